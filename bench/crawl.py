"""align-crawl throughput: the job as a user types it against a one-process loop of the same code.

    .venv/bin/python bench/crawl.py                       # one Common Crawl WARC file's worth
    .venv/bin/python bench/crawl.py --pages 120000        # several
    .venv/bin/python bench/crawl.py --files 1             # the same pages in one file
    .venv/bin/python bench/crawl.py --pages 60000 --page-kb 0 --files 16   # the old small corpus

Builds a corpus from the synthetic web's WARC records (every record, request and metadata ones
too, copied with the page host renamed per copy so relative image URLs give new pairs) until it
holds ``--pages`` HTML pages, each padded to about ``--page-kb`` KB with varied markup (text,
links, a script, icons without alt-text) so pages weigh what Common Crawl's do: the default
40,000 pages of ~75 KB make ~1 GB of gzip members, the size of one Common Crawl WARC file.
Then times (1) the floor: the job's reader and extractor in a plain loop in one process, and
(2) the job with default flags (a worker process per usable core; ``--workers`` to choose),
dedup and Parquet shards included, (3) the same job on a tiny input (its start-up), and (4),
labelled, the job with Beam's explicit ``--direct_running_mode multi_processing
--direct_num_workers 2``. Prints pages/s, the ratio to the
floor, and CPU seconds (this process and its children), which a busy machine disturbs less
than wall time: on 2 cores the job cannot beat ``floor CPU x 2 / job CPU``. Then where the
job's time went: wall and CPU of the runner process and of each worker during start-up, the
harvest stage (read + parse + spill) and the rest (dedup, shards, stats, workers' exit).
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import re
import resource
import shutil
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.crawl.cli import run  # noqa: E402
from pipeline.crawl.harvest import HarvestOptions  # noqa: E402
from pipeline.crawl.job import HarvestFile  # noqa: E402
from pipeline.stats import read_stats  # noqa: E402
from pipeline.warc.reader import WarcRecord, iter_records  # noqa: E402
from pipeline.workers import default_workers  # noqa: E402
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


def is_page(headers: dict, block: bytes) -> bool:
    return headers.get("warc-type") == "response" and b"text/html" in block[:512].lower()


class Padding:
    """Varied filler markup for pages: a pool of blocks, a few drawn per page (no pairs)."""

    def __init__(self, page_kb: int, seed: int = 0, pool: int = 96):
        self.rng = random.Random(seed)
        self.page_bytes = page_kb << 10
        words = ["".join(self.rng.choices("etaoinshrdlucmfwypvbgkjqxz", k=self.rng.randint(2, 10)))
                 for _ in range(2000)]  # fmt: skip
        weights = [1 / rank for rank in range(1, len(words) + 1)]  # Zipf, as words in text
        self.blocks = [self._block(words, weights) for _ in range(pool)] if page_kb else []

    def _block(self, words: list[str], weights: list[float]) -> bytes:
        rng, parts = self.rng, []
        say = lambda n: " ".join(rng.choices(words, weights, k=n))  # noqa: E731
        while sum(map(len, parts)) < 4096:
            kind = rng.random()
            if kind < 0.55:
                link = f'<a href="/{say(2).replace(" ", "/")}.html">{say(3)}</a>'
                parts.append(f"<p>{say(rng.randint(20, 60))} {link} {say(10)}.</p>\n")
            elif kind < 0.75:
                items = "".join(
                    f'<li><a href="/t/{w}">{w}</a></li>' for w in rng.choices(words, k=8)
                )
                parts.append(f'<div class="{say(1)}"><ul>{items}</ul></div>\n')
            elif kind < 0.9:
                body = "; ".join(
                    f"var {w} = f({rng.randint(0, 9999)}, '{say(2)}')"
                    for w in rng.choices(words, k=12)
                )
                parts.append(f"<script>{body};</script>\n")
            else:
                parts.append(f'<span><img src="/icons/{say(1)}.png" alt=""> {say(5)}</span>\n')
        return "".join(parts).encode()

    def pad(self, block: bytes) -> bytes:
        """The page with filler before ``</body>`` up to about the page size."""
        if not self.blocks or b"</body>" not in block:
            return block
        filler, size = [], len(block)
        while size < self.page_bytes:
            filler.append(self.rng.choice(self.blocks))
            size += len(filler[-1])
        head, _, tail = block.rpartition(b"</body>")
        return head + b"".join(filler) + b"</body>" + tail


def build_corpus(
    records: list, output: Path, copies: int, files: int, padding: Padding | None = None
) -> int:
    """Writes ``copies`` renamed copies of the records over ``files`` gzip WARC files."""
    handles = [open(output / f"bench-{i:03d}.warc.gz", "wb") for i in range(files)]
    for copy in range(copies):
        host = f"copy{copy}.example:"
        for headers, block in records:
            uri = headers.get("warc-target-uri", "").replace("127.0.0.1:", host)
            renamed = {**headers, "warc-target-uri": uri} if uri else headers
            block = block.replace(b"127.0.0.1:", host.encode())
            if padding is not None and is_page(headers, block):
                block = padding.pad(block)
            handles[copy % files].write(gzip_member(serialise(renamed, block), level=1))
    for handle in handles:
        handle.close()
    return copies * len(records)


def cpu_seconds() -> float:
    """CPU time of this process and its finished children (the Beam workers)."""
    own, children = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def floor(paths: list[Path]) -> tuple[int, float, float]:
    """Pages parsed, seconds and CPU seconds: the job's reader and extractor in a plain loop."""
    harvest, pages = HarvestFile("warc", HarvestOptions()), 0
    start, cpu = time.perf_counter(), cpu_seconds()
    for path in paths:
        for outcome in harvest.outcomes(str(path)):
            pages += outcome.counts.get("pages/parsed", 0)
    return pages, time.perf_counter() - start, cpu_seconds() - cpu


class Timeline(logging.Handler):
    """Where a job's time goes: wall and CPU of the runner process and of each worker, in
    three phases (start-up until the harvest stage starts, the harvest stage, the rest).

    Stage starts come from the FnApiRunner's debug log; CPU from /proc, sampled every 0.1 s
    (Linux only: elsewhere the breakdown is skipped).
    """

    LOGGER = "apache_beam.runners.portability.fn_api_runner.fn_runner.run_bundle"

    def __init__(self):
        super().__init__()
        self.stages: list[tuple[float, bool]] = []  # (start, is the harvest stage)
        self.samples: list[tuple[float, dict[str, float]]] = []
        self.running = False

    def emit(self, record: logging.LogRecord) -> None:
        match = re.search(r"Running bundle for stage (\S+)", record.getMessage())
        if match:
            self.stages.append((time.perf_counter(), "Harvest" in match.group(1)))

    def __enter__(self):
        logger = logging.getLogger(self.LOGGER)
        logger.setLevel(logging.DEBUG)
        logger.addHandler(self)
        logger.propagate = False
        self.running = os.path.exists("/proc/self/stat")
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.start = time.perf_counter()
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.end = time.perf_counter()
        self.running = False
        self.thread.join()
        logging.getLogger(self.LOGGER).removeHandler(self)

    def _sample(self) -> None:
        workers: dict[int, str] = {}
        seen: dict[int, float] = {}
        ticks = 0
        while self.running:
            if ticks < 100 or ticks % 20 == 0:  # listing /proc costs: every 2 s after 10 s
                for child in _children(os.getpid()):  # /bin/sh -c python -m ...sdk_worker_main
                    for worker in [child, *_children(child)]:
                        workers.setdefault(worker, f"worker {len(workers) // 2 + 1}")
            ticks += 1
            for pid in workers:  # a finished process keeps its last reading
                seen[pid] = max(seen.get(pid, 0.0), _cpu_of(pid))
            snapshot = {"runner": _cpu_of(os.getpid())}
            for pid, name in workers.items():
                snapshot[name] = snapshot.get(name, 0.0) + seen[pid]
            self.samples.append((time.perf_counter(), snapshot))
            time.sleep(0.1)

    def report(self) -> str:
        harvest = [start for start, is_harvest in self.stages if is_harvest]
        if not harvest or not self.samples:
            return "(no timeline: not on Linux, or no harvest stage logged)"
        after = [start for start, _ in self.stages if start > harvest[0]]
        bounds = [self.start, harvest[0], after[0] if after else self.end, self.end]  # 3 phases
        names = sorted(self.samples[-1][1])
        lines = [f"{'phase':<34} {'wall s':>7}  " + "  ".join(f"{n + ' CPU':>12}" for n in names)]
        labels = ("start-up (construction, workers)", "harvest stage", "dedup, shards, stats, exit")
        for label, begin, end in zip(labels, bounds[:-1], bounds[1:], strict=True):
            first, last = self._at(begin), self._at(end)
            cpu = "  ".join(f"{last.get(n, 0) - first.get(n, 0):>12.2f}" for n in names)
            lines.append(f"{label:<34} {end - begin:>7.2f}  {cpu}")
        return "\n".join(lines)

    def _at(self, moment: float) -> dict[str, float]:
        best = self.samples[0][1]
        for when, snapshot in self.samples:
            if when > moment:
                break
            best = snapshot
        return best


def _children(pid: int) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    if int(stat.read().rsplit(")", 1)[1].split()[1]) == pid:
                        found.append(int(entry))
            except OSError:
                continue
    return found


def _cpu_of(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def job(corpus: Path, output: Path, flags: list[str], timeline: Timeline | None = None):
    """Pages parsed, seconds and CPU seconds of the Beam job with ``flags``."""
    argv = ["--input", str(corpus / "*.warc.gz"), "--output", str(output), *flags]
    start, cpu = time.perf_counter(), cpu_seconds()
    if timeline is None:
        run(argv)
    else:
        with timeline:
            run(argv)
    seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    return read_stats(str(output))["counts"]["pages/parsed"], seconds, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pages", type=int, default=40_000, help="HTML pages in the corpus")
    parser.add_argument("--page-kb", type=int, default=75, help="pages padded to this size")
    parser.add_argument("--files", type=int, default=16, help="WARC files the corpus is split in")
    parser.add_argument("--workers", type=int, help="the job's --workers (default: its own)")
    parser.add_argument("--keep", type=Path, help="build the corpus here and keep it (reused)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        generate(root / "web", small_config(port=8000, n_pairs=400))
        records = raw_records(root / "web" / "warc")
        corpus = args.keep or root / "corpus"
        paths = sorted(corpus.glob("*.warc.gz"))
        if len(paths) != args.files or not (corpus / f"pages-{args.pages}-{args.page_kb}").exists():
            shutil.rmtree(corpus, ignore_errors=True)
            corpus.mkdir(parents=True)
            copies = -(-args.pages // sum(is_page(*record) for record in records))
            build_corpus(records, corpus, copies, args.files, Padding(args.page_kb))
            (corpus / f"pages-{args.pages}-{args.page_kb}").touch()
            paths = sorted(corpus.glob("*.warc.gz"))
        size = sum(p.stat().st_size for p in paths) / 2**30
        print(f"corpus: {len(paths)} files, {size:.2f} GiB of gzip members")
        (root / "tiny").mkdir()
        build_corpus(records, root / "tiny", 1, 1)
        rows = [("floor: reader + extractor loop, 1 process", *floor(paths))]
        flags = [] if args.workers is None else ["--workers", str(args.workers)]
        name = "align-crawl, default flags" if not flags else f"align-crawl, {' '.join(flags)}"
        timeline = Timeline()
        rows.append((name, *job(corpus, root / "out", flags, timeline)))
        startup = job(root / "tiny", root / "o0", flags)
        beam_flags = ["--direct_running_mode", "multi_processing", "--direct_num_workers", "2"]
        explicit = job(corpus, root / "out2", beam_flags)
    base = rows[0][1] / rows[0][2]
    pages, seconds, cpu = rows[1][1], rows[1][2] - startup[1], rows[1][3] - startup[2]
    rows.append(("  the same less its start-up (tiny input run)", pages, seconds, cpu))
    rows.append(("  Beam's flags: multi_processing, 2 workers", *explicit))
    print(f"\n{'run':<46} {'pages':>8} {'seconds':>8} {'pages/s':>9} {'ratio':>6} {'CPU s':>7}")
    for name, pages, seconds, cpu in rows:
        rate = pages / seconds
        print(
            f"{name:<46} {pages:>8} {seconds:>8.1f} {rate:>9.0f} {rate / base:>5.2f}x {cpu:>7.1f}"
        )
    print(f"start-up of the job on a 53-page input: {startup[1]:.1f} s wall, "
          f"{startup[2]:.1f} CPU-s")  # fmt: skip
    cores = args.workers or default_workers()
    bound = rows[0][3] * cores / rows[1][3]
    print(f"CPU bound on {cores} free cores: floor CPU x {cores} / job CPU = "
          f"{bound:.2f}x")  # fmt: skip
    print(f"\nwhere the {cores}-worker job's time went (floor: {rows[0][3]:.1f} CPU-s):")
    print(timeline.report())


if __name__ == "__main__":
    main()
