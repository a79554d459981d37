"""One progress display across the demo's stages: stage name, records done, elapsed time."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import TextIO


def format_seconds(seconds: float) -> str:
    minutes, seconds = divmod(int(seconds), 60)
    return f"{minutes:02d}:{seconds:02d}"


class StageProgress:
    """Redraws one line per stage while it runs; leaves a finished line behind.

    ``records`` is polled once a second while the stage runs (e.g. counting output rows
    or training steps), so the line says how far the stage has got, not only how long.
    On a terminal the line is redrawn in place; in a log file only the final line is written.
    """

    def __init__(self, total_stages: int, stream: TextIO | None = None):
        self.total_stages = total_stages
        self.stream = stream or sys.stderr
        self.started = time.monotonic()
        self.index = 0

    def run(
        self,
        name: str,
        work: Callable[[], dict],
        records: Callable[[], str] | None = None,
    ) -> dict:
        """Runs one stage; ``work`` returns a dict whose "summary" ends the stage's line."""
        self.index += 1
        stage_started = time.monotonic()
        stop = threading.Event()
        interactive = self.stream.isatty()

        def line(status: str) -> str:
            elapsed = format_seconds(time.monotonic() - stage_started)
            total = format_seconds(time.monotonic() - self.started)
            step = f"[{self.index}/{self.total_stages}]"
            return f"{step} {name:<22} {status:<44} {elapsed} (total {total})"

        def redraw() -> None:
            while not stop.wait(1.0):
                status = records() if records else "running"
                self.stream.write("\r" + line(status)[:150])
                self.stream.flush()

        ticker = threading.Thread(target=redraw, daemon=True) if interactive else None
        if ticker:
            ticker.start()
        try:
            outcome = work()
        finally:
            stop.set()
            if ticker:
                ticker.join()
        self.stream.write(
            ("\r" if interactive else "") + line(outcome.get("summary", "done")) + "\n"
        )
        self.stream.flush()
        outcome["seconds"] = round(time.monotonic() - stage_started, 1)
        return outcome
