"""Benchmark: align-ingest against merely reading the same list in one process, and its peak
memory at --small vs --large rows.

    .venv/bin/python bench/ingest.py [--rows 1000000] [--small 100000]
                                     [--large 1000000] [--skip-memory] [--skip-throughput]

Two lists of --rows rows: a CC3M-style TSV (caption<TAB>url, no header, ~95 bytes a row) and
a LAION-style Parquet (URL, TEXT, similarity, WIDTH, NSFW; row groups of 128k rows). The
peers only read the file into memory in one process: pandas.read_csv / read_parquet and
pyarrow (multithreaded C++). align-ingest does more: it checks every URL and caption,
computes uids, removes repeats and writes sorted, sharded Parquet: the command as a user types
it (default flags: a worker process per usable core; Beam's start-up included), and, labelled,
with Beam's explicit --direct_running_mode multi_processing --direct_num_workers 2. The ratio
is peer seconds / job seconds: >= 1.0 means the whole ingest takes no longer than reading the
list with that peer. Beside the wall time,
CPU seconds (the job's whole process tree; the peer's threads), which a busy machine
disturbs less, and the job's figures less its start-up (a run on a one-row list).

Memory: align-ingest on the TSV and on the Parquet (row groups of 1M rows, pandas' default)
of --small and --large rows, each in its own process (the
in-process DirectRunner, one worker), its peak RSS read from the kernel (VmHWM) as in
bench/memory.py. A job that streams keeps the same peak: the ratio large/small is the
figure, 1.0 flat; the floor is a process that only imports the job.

Wall times move with the machine's load: the load average is printed before each run.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from pipeline.stats import read_stats  # noqa: E402


def load_bench(name: str):
    """Another bench script as a module (bench/ is scripts, not a package)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", REPO / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def make_list(rows: int, seed: int = 0) -> pa.Table:
    """bench/filter.py's template captions with URLs on 97 hosts, a LAION row's extras, and
    ~1% of rows repeated (the same url and caption) as lists have them."""
    pairs = load_bench("filter").make_pairs(rows, seed)
    rng = np.random.default_rng(seed)
    repeat = rng.random(rows) < 0.01
    source = rng.integers(0, rows, rows)
    index = np.where(repeat, source, np.arange(rows))
    urls = pa.array([f"http://img{i % 97}.example.com/photos/{i:09d}.jpg" for i in index])
    alts = pairs.column("alt").take(pa.array(index))
    return pa.table(
        {
            "URL": urls,
            "TEXT": alts,
            "similarity": rng.random(rows).round(4),
            "WIDTH": rng.integers(64, 4096, rows),
            "NSFW": pa.array(["UNLIKELY"] * rows),
        }
    )


def write_tsv(table: pa.Table, path: Path) -> None:
    with path.open("w") as out:
        for caption, url in zip(
            table.column("TEXT").to_pylist(), table.column("URL").to_pylist(), strict=True
        ):
            out.write(f"{caption}\t{url}\n")


def timed(function) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process's threads)."""
    start, cpu = time.perf_counter(), time.process_time()
    function()
    return time.perf_counter() - start, time.process_time() - cpu


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def read_with_pandas(path: Path) -> None:
    import pandas as pd

    if path.suffix == ".parquet":
        pd.read_parquet(path)
    else:  # what img2dataset does with a TSV (quoting off: CC3M's captions hold quotes)
        pd.read_csv(path, sep="\t", header=None, quoting=3, dtype=str, keep_default_na=False)


def read_with_pyarrow(path: Path) -> None:
    import pyarrow.csv as pa_csv

    if path.suffix == ".parquet":
        pq.read_table(path)
    else:
        pa_csv.read_csv(
            path,
            read_options=pa_csv.ReadOptions(column_names=["caption", "url"]),
            parse_options=pa_csv.ParseOptions(delimiter="\t", quote_char=False),
        )


def ingest_argv(source: Path, output: Path, flags: list[str]) -> list[str]:
    return ["--input", str(source), "--output", str(output), *flags]


DEFAULTS: list[str] = []  # the command a user types: a worker process per usable core
BEAM_FLAGS = ["--direct_running_mode", "multi_processing", "--direct_num_workers", "2"]


def run_ingest(source: Path, output: Path, flags: list[str]) -> tuple[float, float, dict]:
    """align-ingest as a user runs it (its own process): (seconds, CPU seconds, stats)."""
    shutil.rmtree(output, ignore_errors=True)
    command = [sys.executable, "-m", "pipeline.ingest", *ingest_argv(source, output, flags)]
    start, cpu = time.perf_counter(), children_cpu()
    done = subprocess.run(command, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seconds, cpu = time.perf_counter() - start, children_cpu() - cpu
    if done.returncode:
        raise RuntimeError(f"align-ingest failed: {done.stderr[-2000:]}")
    return seconds, cpu, read_stats(str(output))


def load() -> str:
    return "load average " + " ".join(f"{value:.1f}" for value in os.getloadavg())


def throughput(work: Path, rows: int) -> None:
    table = make_list(rows)
    lists = {"TSV (CC3M-style)": work / "cc3m.tsv", "Parquet (LAION-style)": work / "laion.parquet"}
    write_tsv(table, lists["TSV (CC3M-style)"])
    pq.write_table(table, lists["Parquet (LAION-style)"], row_group_size=1 << 17)
    write_tsv(table.slice(0, 1), work / "one.tsv")
    start_wall, start_cpu, _ = run_ingest(work / "one.tsv", work / "out", DEFAULTS)
    print(f"{rows:,} rows; {os.cpu_count()} CPUs; {load()}")
    print(f"align-ingest start-up (a one-row list): {start_wall:.1f} s, {start_cpu:.1f} CPU s\n")
    header = f"{'list':<23}{'implementation':<34}{'seconds':>8}{'CPU s':>8}{'rows/s':>11}"
    print(header + f"{'ratio':>7}{'CPU ratio':>10}")
    for name, path in lists.items():
        wall, cpu, stats = run_ingest(path, work / "out", DEFAULTS)
        assert stats["balanced"] and stats["in"] == rows, stats
        runs = [
            ("align-ingest, default flags", wall, cpu),
            ("  less its start-up", wall - start_wall, cpu - start_cpu),
            (
                "  Beam's flags: multi_processing, 2",
                *run_ingest(path, work / "out", BEAM_FLAGS)[:2],
            ),
            ("pandas read, 1 process", *timed(lambda p=path: read_with_pandas(p))),
            ("pyarrow read, 1 process", *timed(lambda p=path: read_with_pyarrow(p))),
        ]
        for index, (label, seconds, cpu_seconds) in enumerate(runs):
            ratios = f"{'':>17}"
            if index >= 3:
                ratios = f"{seconds / wall:>7.2f}{cpu_seconds / cpu:>10.2f}"
            print(f"{name:<23}{label:<34}{seconds:>8.1f}{cpu_seconds:>8.1f}"
                  f"{rows / seconds:>11,.0f}{ratios}")  # fmt: skip
        print(f"{'':<23}kept {stats['kept']:,}, rejected {stats['rejected']}; {load()}")
    print("\nratio = peer / align-ingest (whole run), in wall and in CPU seconds; >= 1.0: the")
    print("ingest took no longer than reading the list with that peer")


def memory(work: Path, small: int, large: int) -> None:
    memory_bench = load_bench("memory")
    _, floor = memory_bench.run_measured([sys.executable, "-c", "import pipeline.ingest.job"])
    peaks = {}
    for rows in (small, large):
        table = make_list(rows, seed=1)
        sources = {"TSV": work / f"mem-{rows}.tsv", "Parquet": work / f"mem-{rows}.parquet"}
        write_tsv(table, sources["TSV"])
        pq.write_table(table, sources["Parquet"], row_group_size=1 << 20)  # pandas' default
        for kind, source in sources.items():
            output = work / f"mem-{rows}-out"
            argv = [
                sys.executable,
                "-m",
                "pipeline.ingest",
                *ingest_argv(source, output, ["--workers", "1"]),
            ]
            peaks[kind, rows] = memory_bench.run_measured(argv)
            assert read_stats(str(output))["in"] == rows
            shutil.rmtree(output)
            source.unlink()
    print(
        f"\npeak RSS of align-ingest's process (MiB); floor (imports only): {floor:.0f}; {load()}"
    )
    print(f"{'list':<9}{'rows':>10}{'seconds':>9}{'peak MiB':>10}{'above floor':>13}{'ratio':>8}")
    for (kind, rows), (seconds, peak) in peaks.items():
        ratio = peak / peaks[kind, small][1]
        print(f"{kind:<9}{rows:>10,}{seconds:>9.1f}{peak:>10.0f}{peak - floor:>13.0f}{ratio:>8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=100_000)
    parser.add_argument("--large", type=int, default=1_000_000)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_ingest_"))
    try:
        if not args.skip_throughput:
            throughput(work, args.rows)
        if not args.skip_memory:
            memory(work, args.small, args.large)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
