"""Benchmark: peak memory of align-download, align-filter and align-crawl, 10k vs 100k records.

    .venv/bin/python bench/memory.py [--small 10000] [--large 100000] [--shard-rows 5000]
        [--jobs download,archive,text,all,crawl]

Each job runs in its own process (``python -m pipeline.<job>``, the in-process DirectRunner)
and its peak RSS is the kernel's high-water mark of its memory (VmHWM) as it exits. Input
shards hold a fixed number of rows, so 10x the records is 10x the shards: a job that streams keeps
the same peak, one that holds its input grows ~10x. The ratio large/small is the figure:
1.0 is flat; the floor beside it is a process that only imports the job's modules. The filter
runs take seconds, so each is run --repeats times and the median peak is shown (one run's
peak varies by some 10 MiB).

align-download --archive-only reads the same few JPEGs from WARC files of --shard-rows records
each (one capture per URL, written here), so nothing is fetched: the scratch index, each
bucket's lookups and the seeks are what would grow with the records.

align-download fetches from a local HTTP server (threads, keep-alive) that serves a handful
of JPEGs under as many URLs as there are records. align-filter --rules text reads pairs made
by bench/filter.py's generator (template captions with boilerplate and rare-token noise), at
its default 4 output shards. align-filter --rules all reads the same pairs as downloaded
records (small JPEGs, a content hash per record with some shared), drops near-duplicates of
8 eval images (each record's pHash bands join theirs), and writes output shards
of --shard-rows records like its input: a shard is sorted in memory before it is written,
so memory follows the shard size, which --shards sets. align-crawl reads renamed copies of
the synthetic web's WARC records (bench/crawl.py's corpus) in files of about --shard-rows
records, its records being the unit it counts.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import importlib.util
import io
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.records import DOWNLOAD_SCHEMA, PAIR_SCHEMA, make_uid  # noqa: E402
from pipeline.stats import read_stats  # noqa: E402


@functools.cache
def load_bench(name: str):
    """Another bench script as a module (bench/ is scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", REPO / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def jpegs(count: int) -> list[bytes]:
    images = []
    for index in range(count):
        buffer = io.BytesIO()
        colour = (40 * index % 256, 90, 255 - 30 * index % 256)
        Image.new("RGB", (128 + index, 96), colour).save(buffer, format="JPEG", quality=85)
        images.append(buffer.getvalue())
    return images


class ImageServer(ThreadingHTTPServer):
    """Serves /img/<n>.jpg as one of a few JPEGs; anything else is a 404."""

    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), ImageHandler)
        self.images = jpegs(8)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def url(self, index: int) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/img/{index}.jpg"


class ImageHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        name = self.path.rsplit("/", 1)[-1]
        if self.path.startswith("/img/") and name.endswith(".jpg"):
            body, kind, code = self.server.images[int(name[:-4]) % 8], "image/jpeg", 200
        else:
            body, kind, code = b"not found\n", "text/plain", 404
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def write_shards(table: pa.Table, folder: Path, shard_rows: int, prefix: str = "pairs") -> None:
    folder.mkdir(parents=True)
    count = -(-table.num_rows // shard_rows)
    for index in range(count):
        part = table.slice(index * shard_rows, shard_rows)
        pq.write_table(part, folder / f"{prefix}-{index:05d}-of-{count:05d}.parquet")


def download_pairs(server: ImageServer, count: int) -> pa.Table:
    urls = [server.url(i) for i in range(count)]
    alts = [f"a photo of thing number {i}" for i in range(count)]
    rows = {
        "uid": [make_uid(url, alt) for url, alt in zip(urls, alts, strict=True)],
        "url": urls,
        "alt": alts,
        "page_url": ["http://127.0.0.1/page.html"] * count,
        "source": ["bench"] * count,
    }
    return pa.table(rows, schema=PAIR_SCHEMA)


def downloaded(pairs: pa.Table, images: list[bytes]) -> pa.Table:
    """``pairs`` as align-download output: 95% ok, 1 in 50 images at several URLs."""
    count = pairs.num_rows
    ok = [index % 20 != 7 for index in range(count)]
    content = [index - index % 8 if index % 50 == 0 else index for index in range(count)]
    digests = [hashlib.sha256(str(key).encode()).hexdigest() for key in content]
    columns = {name: pairs.column(name) for name in PAIR_SCHEMA.names}
    columns.update(
        status=["ok" if good else "http_404" for good in ok],
        error=[None if good else "404 Not Found" for good in ok],
        image=[images[index % len(images)] if ok[index] else None for index in range(count)],
        width=[128 if good else None for good in ok],
        height=[96 if good else None for good in ok],
        original_width=[1024 if good else None for good in ok],
        original_height=[768 if good else None for good in ok],
        sha256=[digest if good else None for digest, good in zip(digests, ok, strict=True)],
        phash=[digest[:16] if good else None for digest, good in zip(digests, ok, strict=True)],
        mime=["image/jpeg" if good else None for good in ok],
    )
    return pa.table(columns, schema=DOWNLOAD_SCHEMA)


# Runs `-m MODULE ARGS` or `-c CODE` and writes the process's VmHWM (peak RSS of its own
# memory, in KiB) to a file. The kernel's ru_maxrss would not do: a child inherits its parent's
# RSS at fork into ru_maxrss, and this script holds the 100k-record inputs when it starts a job.
PEAK_WRAPPER = """
import runpy, sys
report, how, what = sys.argv[1:4]
sys.argv = [what, *sys.argv[4:]]
try:
    if how == "-m":
        runpy.run_module(what, run_name="__main__", alter_sys=True)
    else:
        exec(what)
finally:
    with open("/proc/self/status") as status:
        peak = next(line.split()[1] for line in status if line.startswith("VmHWM:"))
    with open(report, "w") as out:
        out.write(peak)
"""


def run_measured(argv: list[str]) -> tuple[float, float]:
    """Runs ``[python, -m/-c, ...]`` to completion; returns (seconds, peak RSS in MiB)."""
    with tempfile.NamedTemporaryFile("r", suffix=".peak") as report:
        command = [argv[0], "-c", PEAK_WRAPPER, report.name, *argv[1:]]
        start = time.perf_counter()
        done = subprocess.run(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        seconds = time.perf_counter() - start
        if done.returncode:
            raise RuntimeError(f"{argv[2]} failed ({done.returncode}): {done.stderr[-2000:]}")
        return seconds, int(report.read()) / 1024


ARCHIVE_HOST = "http://archive.example"


def write_archive(folder: Path, count: int, images: list[bytes], shard_rows: int) -> None:
    """WARC files of ``shard_rows`` image captures each (one gzip member per record), and pair
    shards naming those images."""
    warc_write = _warc_write()
    (folder / "archive-warc").mkdir(parents=True)
    files = -(-count // shard_rows)
    for index in range(files):
        with open(folder / "archive-warc" / f"images-{index:05d}.warc.gz", "wb") as handle:
            for number in range(index * shard_rows, min(count, (index + 1) * shard_rows)):
                block = warc_write.http_response(images[number % len(images)], "image/jpeg")
                url = f"{ARCHIVE_HOST}/img/{number}.jpg"
                handle.write(
                    warc_write.gzip_member(warc_write.warc_record(block, target_uri=url), 1)
                )
    urls = [f"{ARCHIVE_HOST}/img/{i}.jpg" for i in range(count)]
    alts = [f"a photo of thing number {i}" for i in range(count)]
    rows = {
        "uid": [make_uid(url, alt) for url, alt in zip(urls, alts, strict=True)],
        "url": urls,
        "alt": alts,
        "page_url": [f"{ARCHIVE_HOST}/page.html"] * count,
        "source": ["bench"] * count,
    }
    write_shards(pa.table(rows, schema=PAIR_SCHEMA), folder / "archive-in", shard_rows)


def _warc_write():
    from tests.pipeline.crawl import warc_write  # noqa: PLC0415 - the tests' WARC writer

    return warc_write


def archive_argv(folder: Path) -> list[str]:
    return [sys.executable, "-m", "pipeline.download", "--input", str(folder / "archive-in"),
            "--output", str(folder / "archive-out"), "--archive-only", "--image-size", "64",
            "--archive", f"{folder}/archive-warc/*.warc.gz", *ONE_PROCESS]  # fmt: skip


# One worker, in the job's own process: the peak RSS measured is then a worker's (by default a
# job starts a worker process per core, and the launcher's own peak would say little).
ONE_PROCESS = ["--workers", "1"]


def download_argv(source: Path, output: Path) -> list[str]:
    return [sys.executable, "-m", "pipeline.download", "--input", str(source), "--output",
            str(output), "--allow-private-networks", "--image-size", "64", "--threads", "32",
            "--per-host-concurrency", "32", "--per-host-rate", "0", *ONE_PROCESS]  # fmt: skip


def filter_argv(source: Path, output: Path, config: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "pipeline.filter", "--input", str(source), "--output",
            str(output), "--config", str(config), *ONE_PROCESS, *extra]  # fmt: skip


def median_run(argv: list[str], output: Path, repeats: int) -> tuple[float, float]:
    """(median seconds, median peak MiB) of ``repeats`` runs, each into a fresh ``output``."""
    runs = []
    for _ in range(repeats):
        shutil.rmtree(output, ignore_errors=True)
        runs.append(run_measured(argv))
    return statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs)


FLOOR = "import apache_beam, pyarrow.parquet, PIL.Image, pipeline.download.job, pipeline.filter.job"


def crawl_records(work: Path) -> list:
    """Every WARC record of a small synthetic web (bench/crawl.py's corpus builder)."""
    from tools.synthweb import generate, small_config

    generate(work / "web", small_config(port=8000, n_pairs=400))
    return load_bench("crawl").raw_records(work / "web" / "warc")


def measure_crawl(records: list, folder: Path, size: int, args) -> tuple[int, float, float]:
    """align-crawl on about ``size`` WARC records in files of about --shard-rows records,
    renamed copies of the web so every copy gives new pairs: (records, seconds, peak MiB)."""
    copies = max(1, round(size / len(records)))
    files = max(1, round(copies * len(records) / args.shard_rows))
    (folder / "warc").mkdir()
    count = load_bench("crawl").build_corpus(records, folder / "warc", copies, files)
    output = folder / "crawl-out"
    argv = [sys.executable, "-m", "pipeline.crawl", "--input", f"{folder}/warc/*.warc.gz",
            "--output", str(output), *ONE_PROCESS]  # fmt: skip
    seconds, rss = median_run(argv, output, args.repeats)
    stats = read_stats(str(output))
    assert stats["balanced"] and stats["in"] == count, stats
    return count, seconds, rss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--shard-rows", type=int, default=5_000)
    parser.add_argument("--repeats", type=int, default=3, help="runs per filter/crawl measure")
    parser.add_argument("--jobs", default="download,archive,text,all,crawl", help="which to run")
    args = parser.parse_args()
    wanted = set(args.jobs.split(","))
    work = Path(tempfile.mkdtemp(prefix="bench_memory_"))
    server = ImageServer()
    generator = load_bench("filter")
    config = work / "config.yaml"
    config.write_text("languages: all\nrare_token_min_count: 2\n")
    evals = work / "eval"
    evals.mkdir()
    for index, image in enumerate(server.images):
        (evals / f"{index}.jpg").write_bytes(image)
    dedup = ("--eval-images", f"bench={evals}/*.jpg")
    names = {"download": "align-download", "text": "align-filter --rules text"}
    names.update(all="align-filter --rules all", crawl="align-crawl (WARC)")
    names["archive"] = "align-download --archive-only"
    jobs = tuple(names[key] for key in names if key in wanted)
    results = {}
    try:
        _, floor_rss = run_measured([sys.executable, "-c", FLOOR])
        web = crawl_records(work) if "crawl" in wanted else None
        for size in (args.small, args.large):
            folder = work / str(size)
            folder.mkdir()
            if "download" in wanted:
                write_shards(download_pairs(server, size), folder / "dl-in", args.shard_rows)
                results[names["download"], size] = (
                    size,
                    *run_measured(download_argv(folder / "dl-in", folder / "dl-out")),
                )
                stats = read_stats(str(folder / "dl-out"))
                assert stats["balanced"] and stats["kept"] == size, stats  # every image fetched
            if "archive" in wanted:
                write_archive(folder, size, server.images, args.shard_rows)
                results[names["archive"], size] = size, *run_measured(archive_argv(folder))
                stats = read_stats(str(folder / "archive-out"))
                assert stats["balanced"] and stats["kept"] == size, stats  # every image read
            shards = str(-(-size // args.shard_rows))
            all_extra = ("--shards", shards, *dedup)
            for key, mode, extra in (("text", "text", ()), ("all", "all", all_extra)):
                if key not in wanted:
                    continue
                job = names[key]
                pairs = generator.make_pairs(size)
                if mode == "text":
                    write_shards(pairs, folder / "text-in", args.shard_rows)
                else:
                    images = downloaded(pairs, server.images)
                    write_shards(images, folder / "all-in", args.shard_rows, prefix="images")
                output = folder / f"{mode}-out"
                argv = filter_argv(folder / f"{mode}-in", output, config, "--rules", mode, *extra)
                results[job, size] = size, *median_run(argv, output, args.repeats)
                stats = read_stats(str(output))
                assert stats["balanced"] and stats["in"] == size, stats
            if "crawl" in wanted:
                results[names["crawl"], size] = measure_crawl(web, folder, size, args)
            print(f"done {size:,} records", flush=True)
    finally:
        server.shutdown()
        shutil.rmtree(work, ignore_errors=True)
    print(f"\nshards of {args.shard_rows:,} rows; peak RSS of the job's process (MiB)")
    print(f"floor (imports only): {floor_rss:.0f} MiB\n")
    header = f"{'job':<28}{'records':>10}{'seconds':>9}{'peak MiB':>10}{'above floor':>13}"
    print(header + f"{'ratio':>8}")
    for job in jobs:
        base = results[job, args.small][2]
        for size in (args.small, args.large):
            records, seconds, rss = results[job, size]
            print(
                f"{job:<28}{records:>10,}{seconds:>9.1f}{rss:>10.0f}{rss - floor_rss:>13.0f}"
                f"{rss / base:>8.2f}"
            )


if __name__ == "__main__":
    main()
