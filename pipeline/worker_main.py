"""A local worker process that ends with the job that started it.

With more than one worker a job runs Beam's SDK harness in worker processes
(``multi_processing``, pipeline/options.py). Beam starts each as ``sh -c 'python -m
apache_beam.runners.worker.sdk_worker_main'`` and stops them when the pipeline ends; a launcher
killed on the way (SIGKILL, SIGTERM, a closed terminal) never does, and its workers lived on,
idle, holding their memory. pipeline/runner.py starts this module instead, with the launcher's
process id: a thread checks every second that the launcher still runs and ends the worker when
it does not; the rest is Beam's own worker.

    python -m pipeline.worker_main LAUNCHER_PID
"""

from __future__ import annotations

import os
import sys
import threading
import time

CHECK_SECONDS = 1.0


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:  # no /proc (macOS): ask the kernel instead
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass
        return True


def end_with(launcher: int) -> None:
    """Exits this process (at once: Beam's threads would hold it) once ``launcher`` is gone."""
    while alive(launcher):
        time.sleep(CHECK_SECONDS)
    os._exit(1)


def main(argv: list[str]) -> None:
    threading.Thread(target=end_with, args=(int(argv[1]),), daemon=True, name="launcher").start()
    from apache_beam.runners.worker import sdk_worker_main  # noqa: PLC0415 - after the watch

    sdk_worker_main.main(argv)


if __name__ == "__main__":
    main(sys.argv)
