"""Benchmark: align-filter --rules text as a user types it, against a one-process floor.

    .venv/bin/python bench/filter.py [--pairs 1000000] [--repeats 2]

The headline is the command with no flags but --input/--output: ALIGN's defaults (English
only, fastText), one worker process per usable core. Beside it, each labelled: the same with
``--languages all`` (what the language rule costs), with Beam's explicit
``--direct_running_mode multi_processing --direct_num_workers 2`` (the defaults must match it),
and with ``--workers 1``. Each job runs as its own process, start-up included; with
--repeats, runs are interleaved and the best of each is shown.

Pairs come from templates (fast, numpy-seeded) with the noise the rules target: boilerplate
alt-texts shared by many URLs, rare tokens, too short/long texts. The floor applies the same
rules (length, images per alt-text, rare unigrams/bigrams, then the language of what is left)
with the same filters functions in one plain-Python process; the default job's verdicts must
equal it. Ratios: a job's pairs/s over the floor's, and over the headline's.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from filters.config import FilterConfig  # noqa: E402
from filters.langid import batch_detector  # noqa: E402
from filters.rules.alt_length import check_length  # noqa: E402
from filters.rules.images_per_alt import check_images_per_alt  # noqa: E402
from filters.rules.rare_tokens import rare_cut_count  # noqa: E402
from filters.text import ngrams, normalize, unigrams  # noqa: E402

ADJECTIVES = "red blue green small large old new bright dark wooden golden tiny".split()
NOUNS = "dog cat house car tree boat bridge mountain river flower bird chair lamp".split()
PLACES = "beach garden street forest lake kitchen city field table window".split()
TEMPLATES = [
    "a {a} {n} on the {p}",
    "photo of a {a} {n} near the {p}",
    "the {a} {n} and a {a2} {n2} in the {p}",
    "{a} {n}",
    "close up of a {a} {n} in a {p} with a {a2} {n2} and another {n} behind",
]
BOILERPLATE = ["click here to enlarge", "image", "product photo", "thumbnail image of item"]


def make_pairs(count: int, seed: int = 0) -> pa.Table:
    """Template captions, ~2% boilerplate, ~2% with a rare random token, unique URLs."""
    rng = np.random.default_rng(seed)
    pick = {
        name: rng.integers(0, len(words), count)
        for name, words in [
            ("a", ADJECTIVES),
            ("a2", ADJECTIVES),
            ("n", NOUNS),
            ("n2", NOUNS),
            ("p", PLACES),
        ]  # fmt: skip
    }
    template = rng.integers(0, len(TEMPLATES), count)
    noise = rng.random(count)
    rare = rng.integers(0, 2**40, count)
    alts = []
    for i in range(count):
        if noise[i] < 0.02:
            alts.append(BOILERPLATE[i % len(BOILERPLATE)])
            continue
        alt = TEMPLATES[template[i]].format(
            a=ADJECTIVES[pick["a"][i]],
            a2=ADJECTIVES[pick["a2"][i]],
            n=NOUNS[pick["n"][i]],
            n2=NOUNS[pick["n2"][i]],
            p=PLACES[pick["p"][i]],
        )
        if noise[i] < 0.04:
            alt += f" x{rare[i]:010x}"
        alts.append(alt)
    urls = [f"http://img{i % 97}.example/{i:08d}.jpg" for i in range(count)]
    uids = [f"{(i * 2654435761) % 2**64:016x}" for i in range(count)]
    return pa.table(
        {
            "uid": uids,
            "url": urls,
            "alt": alts,
            "page_url": [f"http://site.example/{i // 20}.html" for i in range(count)],
            "source": [f"bench@{i}" for i in range(count)],
        }
    )


def floor(table: pa.Table, config: FilterConfig) -> dict[str, int]:
    """The same text rules in one process: dict counts, a verdict per pair, then the language
    of the pairs every other rule kept (as the job does)."""
    alts = table.column("alt").to_pylist()
    urls = table.column("url").to_pylist()
    tokens = [unigrams(alt) for alt in alts]
    counts: Counter = Counter()
    images: dict[str, set] = {}
    for alt, url, row_tokens in zip(alts, urls, tokens, strict=True):
        counts.update(ngrams(row_tokens))
        images.setdefault(normalize(alt), set()).add(url)
    cut = rare_cut_count(
        Counter(counts.values()), config.rare_token_vocab_size, config.rare_token_min_count
    )
    tally: Counter = Counter()
    survivors = []
    for alt, row_tokens in zip(alts, tokens, strict=True):
        reasons = [
            check_length(len(row_tokens), config.min_unigrams, config.max_unigrams),
            check_images_per_alt(len(images[normalize(alt)]), config.max_images_per_alt),
            ("rare_token", "") if any(counts[t] < cut for t in ngrams(row_tokens)) else None,
        ]
        reasons = [r for r in reasons if r]
        if reasons:
            tally[reasons[0][0]] += 1
        else:
            survivors.append(alt)
    if not config.languages:
        tally["kept"] += len(survivors)
        return dict(tally)
    detected = batch_detector(config.language_backend, config.language_seed)(survivors)
    for language in detected:
        tally["kept" if language in config.languages else "language"] += 1
    return dict(tally)


RUNS = {
    "default: align-filter --rules text --input --output": [],
    "  --languages all (language rule off)": ["--languages", "all"],
    "  Beam's flags: multi_processing, 2 workers": [
        "--direct_running_mode", "multi_processing", "--direct_num_workers", "2"
    ],
    "  --workers 1 (one process)": ["--workers", "1"],
}  # fmt: skip


def run_job(source: Path, output: Path, flags: list[str]) -> tuple[float, dict]:
    """The command as a user runs it, in its own process: (seconds, stats)."""
    shutil.rmtree(output, ignore_errors=True)
    command = [sys.executable, "-m", "pipeline.filter", "--rules", "text"]
    command += ["--input", str(source), "--output", str(output), *flags]
    start = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return seconds, json.loads((output / "stats.json").read_text())


def language_rate(alts: list[str], backend: str, seconds: float = 3.0) -> float:
    """Texts per second in one process, batched as the job calls the detector."""
    detect = batch_detector(backend, 0)
    detect(alts[:10])
    start, done = time.perf_counter(), 0
    while time.perf_counter() - start < seconds and done < len(alts):
        detect(alts[done : done + 1024])
        done += 1024
    return min(done, len(alts)) / (time.perf_counter() - start)


def write_inputs(table: pa.Table, folder: Path, files: int) -> None:
    folder.mkdir()
    per_file = -(-table.num_rows // files)
    for index in range(files):
        part = table.slice(index * per_file, per_file)
        pq.write_table(part, folder / f"pairs-{index:05d}.parquet", row_group_size=65_536)


def print_rows(pairs: int, floor_seconds: float, best: dict[str, float]) -> None:
    headline = best[next(iter(RUNS))]
    print(f"\n{'run':<54}{'seconds':>9}{'pairs/s':>11}{'vs floor':>10}{'vs default':>12}")
    rows = [("floor: plain Python, 1 process, language included", floor_seconds), *best.items()]
    for name, seconds in rows:
        print(f"{name:<54}{seconds:>9.1f}{pairs / seconds:>11,.0f}"
              f"{floor_seconds / seconds:>9.2f}x{headline / seconds:>11.2f}x")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--files", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=1, help="runs of each job (best kept)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_filter_"))
    try:
        start = time.perf_counter()
        table = make_pairs(args.pairs)
        write_inputs(table, work / "in", args.files)
        cores, load = len(os.sched_getaffinity(0)), os.getloadavg()[0]
        print(f"generated {args.pairs:,} pairs in {time.perf_counter() - start:.1f}s; "
              f"{cores} usable cores; load average {load:.1f}")  # fmt: skip

        start = time.perf_counter()
        expected = floor(table, FilterConfig())
        floor_seconds = time.perf_counter() - start

        best: dict[str, float] = {}
        for _ in range(args.repeats):
            for name, flags in RUNS.items():
                seconds, stats = run_job(work / "in", work / "out", flags)
                best[name] = min(seconds, best.get(name, seconds))
                assert stats["balanced"], stats
                if not flags:  # the defaults: the floor's verdicts exactly
                    got = {"kept": stats["kept"], **stats["rejected"]}
                    assert got == expected, (got, expected)
        print_rows(args.pairs, floor_seconds, best)
        print(f"load average after: {os.getloadavg()[0]:.1f}")
        print(f"\nverdicts agree: {json.dumps(expected, sort_keys=True)}")

        alts = table.column("alt").to_pylist()[:20_000]
        print(f"\n{'language detector (1 process, batched)':<42}{'texts/s':>12}")
        for backend in ("fasttext", "langdetect"):
            print(f"{backend:<42}{language_rate(alts, backend):>12,.0f}")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
