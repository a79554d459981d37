"""One progress line and one closing summary for every command, on a terminal or in a log.

On a terminal the line is redrawn in place by tqdm (done/total, rate, ETA, and a note such as
the kept share and the top rejection reasons). In a log or CI, where a redrawn line is a
flood of carriage returns, a plain line with the same fields is written every ``every``
seconds. The Beam jobs (pipeline/monitor.py) and the trainer (training/train_progress.py) both
draw with it; it sits in filters/, the bottom of the import graph, because it imports
neither Beam nor TensorFlow (docs/architecture.md).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Mapping
from typing import TextIO

from tqdm import tqdm

from commandline.flags import DEFAULT_PROGRESS_EVERY

WITH_TOTAL = (
    "{desc}: {percentage:3.0f}% {n_fmt}/{total_fmt} [{elapsed}<{remaining}, {rate_fmt}{postfix}]"
)
WITHOUT_TOTAL = "{desc}: {n_fmt} [{elapsed}, {rate_fmt}{postfix}]"


class ProgressLine:
    """A live line on a terminal, an occasional line in a log; ``update`` as work is done.

    ``unit`` names what is counted (" records", "B" with ``unit_scale`` for bytes);
    ``total`` is None when unknown (then no percentage and no ETA).
    """

    def __init__(
        self,
        label: str,
        total: int | None = None,
        unit: str = " records",
        *,
        unit_scale: bool = False,
        initial: int = 0,
        every: float = DEFAULT_PROGRESS_EVERY,
        stream: TextIO | None = None,
    ):
        self.label, self.total, self.unit, self.unit_scale = label, total, unit, unit_scale
        self.stream = stream or sys.stderr
        self.every = every
        self.started = self.last_line = time.monotonic()
        self.initial = self.done = initial
        self.note = ""
        self.bar = None
        if _is_terminal(self.stream):
            self.bar = tqdm(
                total=total,
                initial=initial,
                desc=label,
                unit=unit,
                unit_scale=unit_scale,
                file=self.stream,
                dynamic_ncols=True,
                mininterval=0.5,
                smoothing=0.1,
            )

    def update(self, done: int, note: str = "") -> None:
        """``done`` units so far (never decreases the line), and the note after the rate."""
        done = max(done, self.done)
        advanced, self.done, self.note = done - self.done, done, note
        if self.bar is not None:
            self.bar.set_postfix_str(note, refresh=False)
            self.bar.update(advanced) if advanced else self.bar.refresh()
            return
        now = time.monotonic()
        if now - self.last_line >= self.every:
            self.last_line = now
            self._write(self.text(now))

    def text(self, now: float | None = None) -> str:
        """The line as a log shows it (tqdm's own formatting of counts, rate and ETA)."""
        elapsed = (now or time.monotonic()) - self.started
        rate = (self.done - self.initial) / elapsed if elapsed > 0 else None
        return tqdm.format_meter(
            self.done,
            self.total,
            elapsed,
            prefix=self.label,
            unit=self.unit,
            unit_scale=self.unit_scale,
            rate=rate,
            postfix=self.note or None,
            bar_format=WITH_TOTAL if self.total else WITHOUT_TOTAL,
            initial=self.initial,
        )

    def close(self) -> None:
        """Leaves the terminal's line as it was; a log gets nothing more (a summary follows)."""
        if self.bar is not None:
            self.bar.close()

    def _write(self, line: str) -> None:
        self.stream.write(line + "\n")
        self.stream.flush()


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


# --- summaries ------------------------------------------------------------------------------


def duration(seconds: float) -> str:
    """1:02:03, 2:03 or 4.2 s."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{seconds:02d}" if hours else f"{minutes}:{seconds:02d}"


def share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "n/a"


def top_reasons(rejected: Mapping[str, int], whole: int, limit: int = 3) -> str:
    """``not_html 30.1%, no_image_pairs 9.0%`` (+ how many more reasons), largest first."""
    ranked = sorted(rejected.items(), key=lambda item: (-item[1], item[0]))
    shown = [f"{reason} {share(count, whole)}" for reason, count in ranked[:limit] if count]
    more = len([count for _, count in ranked[limit:] if count])
    return ", ".join(shown) + (f" (+{more} more)" if more else "")
