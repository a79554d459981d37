"""Benchmark: align-download on many hosts with one dominant host, against its politeness floor.

    .venv/bin/python bench/politeness.py [--hosts 50] [--urls 20] [--dominant 480] [--workers 1 4]

A web of ``--hosts`` small loopback hosts (127.0.0.2, .3, ...) with ``--urls`` images each,
plus one dominant host with ``--dominant`` images, is downloaded by the command a user types
(default politeness flags: 4 connections and 8 requests/s per host, for the whole job), once
per worker count (the DirectRunner's multi_processing mode). The floor is what politeness
alone costs: the dominant host's URLs divided by its rate cap. The ratio wall / floor shows
whether politeness costs the dominant host's time or everyone's; the server's counts show
that the caps held on every host (request starts in any one-second window may exceed the
rate by at most 2: docs/dataflow.md, "Politeness").
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow.parquet as pq
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from pipeline.fetch.fetcher import FetchConfig  # noqa: E402
from pipeline.records import PAIR_SCHEMA, make_uid  # noqa: E402
from pipeline.shards import rows_to_table  # noqa: E402
from tools.webserver import WebServer  # noqa: E402

BURST = 2


def small_jpeg(seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (seed * 37 % 256, seed * 91 % 256, seed * 13 % 256)).save(
        buffer, "JPEG", quality=85
    )
    return buffer.getvalue()


def build_web(root: Path, hosts: list[str], counts: list[int]) -> None:
    for number, (host, count) in enumerate(zip(hosts, counts, strict=True)):
        folder = root / host / "img"
        folder.mkdir(parents=True)
        (root / host / "robots.txt").write_text("User-agent: *\nDisallow: /private/\n")
        for index in range(count):
            (folder / f"{index}.jpg").write_bytes(small_jpeg(number * 1000 + index))


def write_pairs(folder: Path, urls: list[str], shards: int = 4) -> None:
    rows = [
        {
            "uid": make_uid(url, "a photo"),
            "url": url,
            "alt": "a photo",
            "page_url": "",
            "source": "b",
        }
        for url in urls
    ]
    rows.sort(key=lambda row: row["uid"])
    folder.mkdir(parents=True)
    for shard in range(shards):
        table = rows_to_table(rows[shard::shards], PAIR_SCHEMA)
        pq.write_table(table, folder / f"pairs-{shard:05d}-of-{shards:05d}.parquet")


def download(pairs: Path, output: Path, workers: int) -> float:
    """Wall seconds of the user's command (default politeness) with ``workers`` processes."""
    command = [sys.executable, "-m", "pipeline.download", "--input", str(pairs)]
    command += ["--output", str(output), "--allow-private-networks"]
    command += ["--direct_running_mode", "multi_processing", "--direct_num_workers", str(workers)]
    started = time.monotonic()
    subprocess.run(command, check=True, cwd=REPO, capture_output=True)
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, default=50, help="small hosts beside the dominant")
    parser.add_argument("--urls", type=int, default=20, help="images per small host")
    parser.add_argument("--dominant", type=int, default=480, help="images on the dominant host")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 4])
    args = parser.parse_args()
    defaults = FetchConfig()
    rate, concurrency = defaults.per_host_rate, defaults.per_host_concurrency
    hosts = [f"127.0.0.{i}" for i in range(2, args.hosts + 3)]  # the last one dominates
    counts = [args.urls] * args.hosts + [args.dominant]
    floor = args.dominant / rate
    print(
        f"{args.hosts} hosts x {args.urls} images + 1 dominant host x {args.dominant}; "
        f"default caps: {concurrency} connections, {rate:g} requests/s per host (whole job); "
        f"floor {args.dominant} / {rate:g} = {floor:.1f} s\n"
    )
    columns = ["workers", "wall s", "floor s", "wall / floor", "connections", "in progress"]
    print("| " + " | ".join([*columns, "starts/s", "robots.txt"]) + " |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory(prefix="bench-politeness-") as work:
        work = Path(work)
        build_web(work / "site", hosts, counts)
        with WebServer(work / "site", hosts=hosts, faults=False) as server:
            urls = [server.url(h, f"img/{i}.jpg") for h, n in enumerate(counts) for i in range(n)]
            write_pairs(work / "pairs", urls)
            for workers in args.workers:
                server.meter.reset()
                output = work / f"images-{workers}"
                seconds = download(work / "pairs", output, workers)
                stats = json.loads((output / "stats.json").read_text())
                assert stats["kept"] == len(urls), stats
                seen = server.politeness().values()
                worst = {key: max(host[key] for host in seen) for key in next(iter(seen))}
                fetches = sorted({host["robots_txt"] for host in seen})
                print(
                    f"| {workers} | {seconds:.1f} | {floor:.1f} | {seconds / floor:.2f}x | "
                    f"{worst['connections']} (cap {concurrency}) | {worst['requests']} | "
                    f"{worst['starts_per_second']} (cap {rate:g} + {BURST}) | "
                    f"{'/'.join(map(str, fetches))} per host |"
                )


if __name__ == "__main__":
    main()
