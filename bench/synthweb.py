"""How fast the synthetic web is generated, beside the floor of merely encoding its pictures.

    .venv/bin/python bench/synthweb.py [--pairs 10000] [--workers N]

Floor: Pillow encoding a 330x330 RGB picture to JPEG (quality 90) in one process, the one
step no generator of JPEG files can skip; the ratio says how many of those floor-encodes
the whole generator's output (pictures, pages, WARC/WAT, ground truth) costs per pair.
"""

from __future__ import annotations

import argparse
import io
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tools.synthweb import WebConfig, generate  # noqa: E402


def cpu_seconds() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def floor_rate(n: int = 600) -> float:
    """JPEG encodes per second of one process (a textured 330x330 picture, quality 90)."""
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, size=(33, 33, 3), dtype=np.uint8)
    image = Image.fromarray(base).resize((330, 330), Image.Resampling.BILINEAR)
    started = time.perf_counter()
    for _ in range(n):
        image.save(io.BytesIO(), "JPEG", quality=90)
    return n / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    floor = floor_rate()
    with tempfile.TemporaryDirectory(prefix="bench-synthweb-") as folder:
        cpu0, started = cpu_seconds(), time.perf_counter()
        manifest = generate(folder, WebConfig(n_pairs=args.pairs, workers=args.workers))
        wall, cpu = time.perf_counter() - started, cpu_seconds() - cpu0
    counts = manifest["counts"]
    rate = counts["pairs"] / wall
    print(f"{'what':<44} {'seconds':>8} {'cpu s':>8} {'per s':>9}")
    label = f"generate {counts['pairs']} pairs ({counts['pictures']} pictures)"
    print(f"{label:<44} {wall:8.1f} {cpu:8.1f} {rate:9.0f}")
    print(f"{'floor: JPEG encode of one picture, 1 process':<44} {'':>8} {'':>8} {floor:9.0f}")
    print(f"ratio generate pairs/s / floor encodes/s: {rate / floor:.2f}")
    print(
        f"cpu seconds per 1000 pairs: {cpu / counts['pairs'] * 1000:.1f}"
        f" (wall on a quiet machine is about cpu s / cores)"
    )
    print(
        f"target: {args.pairs} pairs well under 60 s -> {'met' if wall < 60 else 'NOT met'}"
        f" ({wall:.1f} s)"
    )


if __name__ == "__main__":
    main()
