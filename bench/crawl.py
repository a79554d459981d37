"""align-crawl throughput: the Beam job on 2 workers against a one-process loop of the same code.

    .venv/bin/python bench/crawl.py [--copies 1200] [--files 16]

Builds a corpus from the synthetic web's WARC files (every record, request and metadata ones
too, copied ``--copies`` times with the page host renamed per copy so relative image URLs give
new pairs), then times (1) the floor: the job's reader and extractor in a plain loop in one
process, and (2) the job on the DirectRunner with 2 worker processes, dedup and Parquet shards
included. Prints pages/s of each and the ratio.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.crawl.cli import run  # noqa: E402
from pipeline.crawl.harvest import HarvestOptions  # noqa: E402
from pipeline.crawl.job import HarvestFile  # noqa: E402
from pipeline.crawl.warc_source import WarcRecord, iter_records  # noqa: E402
from pipeline.stats import read_stats  # noqa: E402
from tests.pipeline.crawl.warc_write import gzip_member  # noqa: E402
from tools.synthweb import generate, small_config  # noqa: E402


def raw_records(warc_dir: Path) -> list[tuple[dict, bytes]]:
    """Every record (WARC headers, block) of the synthetic web's WARC files."""
    out = []
    for path in sorted(warc_dir.glob("*.warc.gz")):
        with open(path, "rb") as stream:
            for record in iter_records(stream):
                assert isinstance(record, WarcRecord)
                out.append((record.headers, record.block))
    return out


def serialise(headers: dict, block: bytes) -> bytes:
    headers = {**headers, "content-length": str(len(block))}
    head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
    return f"WARC/1.0\r\n{head}\r\n".encode() + block + b"\r\n\r\n"


def build_corpus(records: list, output: Path, copies: int, files: int) -> int:
    """Writes ``copies`` renamed copies of the records over ``files`` gzip WARC files."""
    handles = [open(output / f"bench-{i:03d}.warc.gz", "wb") for i in range(files)]
    for copy in range(copies):
        host = f"copy{copy}.example:"
        for headers, block in records:
            uri = headers.get("warc-target-uri", "").replace("127.0.0.1:", host)
            renamed = {**headers, "warc-target-uri": uri} if uri else headers
            block = block.replace(b"127.0.0.1:", host.encode())
            handles[copy % files].write(gzip_member(serialise(renamed, block), level=1))
    for handle in handles:
        handle.close()
    return copies * len(records)


def floor(paths: list[Path]) -> tuple[int, float]:
    """Pages parsed and seconds: the job's own per-file reader and extractor in a plain loop."""
    harvest, pages = HarvestFile("warc", HarvestOptions()), 0
    start = time.perf_counter()
    for path in paths:
        for outcome in harvest.outcomes(str(path)):
            pages += outcome.counts.get("pages/parsed", 0)
    return pages, time.perf_counter() - start


def job(corpus: Path, output: Path, workers: int) -> tuple[int, float]:
    argv = ["--input", str(corpus / "*.warc.gz"), "--output", str(output), "--key-buckets", "16"]
    argv += ["--direct_num_workers", str(workers)]
    if workers > 1:
        argv += ["--direct_running_mode", "multi_processing"]
    start = time.perf_counter()
    run(argv)
    seconds = time.perf_counter() - start
    return read_stats(str(output))["counts"]["pages/parsed"], seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--copies", type=int, default=1200)
    parser.add_argument("--files", type=int, default=16)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        generate(root / "web", small_config(port=8000, n_pairs=400))
        (root / "corpus").mkdir()
        n = build_corpus(
            raw_records(root / "web" / "warc"), root / "corpus", args.copies, args.files
        )
        paths = sorted((root / "corpus").glob("*.warc.gz"))
        size = sum(p.stat().st_size for p in paths) / 2**20
        print(f"corpus: {n} records in {len(paths)} files, {size:.1f} MiB gzipped")
        (root / "tiny").mkdir()
        build_corpus(raw_records(root / "web" / "warc"), root / "tiny", 1, 1)
        rows = [("floor: reader + extractor loop, 1 process", *floor(paths))]
        rows.append(("align-crawl, DirectRunner, 2 workers", *job(root / "corpus", root / "o2", 2)))
        startup = job(root / "tiny", root / "o0", 2)[1]
    base = rows[0][1] / rows[0][2]
    pages, seconds = rows[1][1], rows[1][2] - startup
    rows.append(("  the same less its start-up (tiny input run)", pages, seconds))
    print(f"\n{'run':<46} {'pages':>8} {'seconds':>8} {'pages/s':>9} {'ratio':>6}")
    for name, pages, seconds in rows:
        rate = pages / seconds
        print(f"{name:<46} {pages:>8} {seconds:>8.1f} {rate:>9.0f} {rate / base:>6.2f}x")
    print(f"start-up of a 2-worker DirectRunner job on a 53-page input: {startup:.1f} s")


if __name__ == "__main__":
    main()
