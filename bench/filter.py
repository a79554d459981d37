"""Benchmark: align-filter --rules text on synthetic pairs vs a one-process plain-Python floor.

    .venv/bin/python bench/filter.py [--pairs 1000000] [--workers 2]

Pairs come from templates (fast, numpy-seeded) with the noise the rules target: boilerplate
alt-texts shared by many URLs, rare tokens, too short/long texts. Both sides apply the same
rules (length, images per alt-text, rare unigrams/bigrams; language timed separately) with
the same filters.text functions; the ratio is job pairs/s over floor pairs/s.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from filters.config import FilterConfig
from filters.text import (
    check_images_per_alt,
    check_length,
    ngrams,
    normalize,
    rare_cut_count,
    unigrams,
)

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
    """The same text rules in one process: dict counts, then a verdict per pair."""
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
    for alt, row_tokens in zip(alts, tokens, strict=True):
        reasons = [
            check_length(len(row_tokens), config.min_unigrams, config.max_unigrams),
            check_images_per_alt(len(images[normalize(alt)]), config.max_images_per_alt),
            ("rare_token", "") if any(counts[t] < cut for t in ngrams(row_tokens)) else None,
        ]
        reasons = [r for r in reasons if r]
        tally[reasons[0][0] if reasons else "kept"] += 1
    return dict(tally)


def run_job(source: Path, output: Path, config_path: Path, workers: int, rows: int) -> dict:
    from pipeline.filter.cli import run
    from pipeline.stats import read_stats

    argv = ["--input", str(source), "--output", str(output), "--rules", "text",
            "--config", str(config_path), "--batch-rows", str(rows), "--shards", "4"]  # fmt: skip
    if workers > 1:
        argv += ["--direct_num_workers", str(workers), "--direct_running_mode", "multi_processing"]
    run(argv)
    return read_stats(str(output))


def language_rate(alts: list[str], backend: str, seconds: float = 5.0) -> float:
    from filters.language import detector

    detect = detector(backend)
    detect(alts[0])
    start, done = time.perf_counter(), 0
    while time.perf_counter() - start < seconds and done < len(alts):
        detect(alts[done])
        done += 1
    return done / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-rows", type=int, default=65_536)
    parser.add_argument("--files", type=int, default=8)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench_filter_"))
    try:
        start = time.perf_counter()
        table = make_pairs(args.pairs)
        (work / "in").mkdir()
        per_file = -(-args.pairs // args.files)
        for index in range(args.files):
            part = table.slice(index * per_file, per_file)
            pq.write_table(part, work / "in" / f"pairs-{index:05d}.parquet", row_group_size=65_536)
        print(f"generated {args.pairs:,} pairs in {time.perf_counter() - start:.1f}s")
        config = FilterConfig(languages=(), rare_token_min_count=2)
        config_path = work / "config.yaml"
        config_path.write_text("languages: all\nrare_token_min_count: 2\n")

        start = time.perf_counter()
        expected = floor(table, config)
        floor_seconds = time.perf_counter() - start

        start = time.perf_counter()
        stats = run_job(work / "in", work / "out", config_path, args.workers, args.batch_rows)
        job_seconds = time.perf_counter() - start
        got = {"kept": stats["kept"], **stats["rejected"]}
        assert stats["balanced"], stats
        assert got == expected, (got, expected)

        alts = table.column("alt").to_pylist()[:20_000]
        rows = [
            ("plain Python, 1 process (floor)", floor_seconds),
            (f"align-filter DirectRunner, {args.workers} workers", job_seconds),
        ]
        print(f"\n{'implementation':<42}{'seconds':>10}{'pairs/s':>12}{'ratio':>8}")
        for name, seconds in rows:
            rate = args.pairs / seconds
            print(f"{name:<42}{seconds:>10.1f}{rate:>12,.0f}{floor_seconds / seconds:>8.2f}")
        print(f"\nverdicts agree: {json.dumps(expected, sort_keys=True)}")
        print(f"\n{'language detector (1 process)':<42}{'texts/s':>12}")
        for backend in ("langdetect", "fasttext"):
            try:
                print(f"{backend:<42}{language_rate(alts, backend):>12,.0f}")
            except ImportError as error:
                print(f"{backend:<42}{'n/a':>12}  ({error})")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
