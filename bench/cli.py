"""Seconds to ``--help`` for every console script, beside a bare ``python -c pass`` (the floor)
and the import each command now defers (the peer: what --help cost when it imported first).

    .venv/bin/python bench/cli.py [--repeat 5]

Each figure is the median of ``--repeat`` fresh processes, in wall time and in CPU time
(user + system of the child: on a quiet machine a start-up's wall time is about its CPU
time, and CPU time wanders far less when other work shares the machine). The target is
under a second for every command. tests/test_help.py checks what cannot drift: that --help
imports no framework.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
BIN = Path(sys.executable).parent
DEFERRED = {"Beam": "import apache_beam", "TensorFlow and Keras": "import tensorflow, keras"}


def seconds(command: list[str], repeat: int) -> tuple[float, float]:
    """Median (wall, CPU) seconds of running ``command`` to its end."""
    walls, cpus = [], []
    for _ in range(repeat):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def row(label: str, took: tuple[float, float], floor: tuple[float, float], note: str) -> str:
    wall, cpu = took
    return (
        f"{label:<28}{wall:7.2f} s wall {cpu:6.2f} s CPU"
        f"   {wall / floor[0]:5.1f}x / {cpu / floor[1]:5.1f}x the floor{note}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    floor = seconds([sys.executable, "-c", "pass"], args.repeat)
    print(row("python -c pass", floor, floor, " (the floor)"))
    slowest = 0.0
    for script in sorted(SCRIPTS):
        took = seconds([str(BIN / script), "--help"], args.repeat)
        slowest = max(slowest, took[1])
        print(row(script + " --help", took, floor, ""))
    for name, statement in DEFERRED.items():
        took = seconds([sys.executable, "-c", statement], max(1, args.repeat // 2))
        print(row(statement, took, floor, f" ({name}: deferred past --help)"))
    verdict = "met" if slowest < 1.0 else "NOT met"
    print(f"slowest --help: {slowest:.2f} s of CPU; the 1 s target is {verdict}")


if __name__ == "__main__":
    main()
