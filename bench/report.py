"""The filter report on a large run: streamed aggregation against loading it all into pandas.

    .venv/bin/python bench/report.py [--rows 2000000] [--shards 8]

Writes a finished align-filter run folder (measurements and rejects shards as the filter job
writes them, Zipf-distributed alt-texts and images, realistic sizes, reasons and languages),
then, each in a fresh process, times (1) the peer: pandas reads every measurement into one
DataFrame and computes the same aggregates (histograms, languages, 20 most frequent alt-texts
and images, examples per reason), the in-memory floor; (2) pipeline.report.gather.gather, which
streams the shards batch by batch in bounded memory; (3) the whole write_report (aggregation,
six PNGs, Markdown and HTML). Prints seconds, rows/s and peak resident memory, with ratios.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.filter.apply import MEASUREMENT_SCHEMA, REJECT_OUTPUT_SCHEMA  # noqa: E402

REASONS = ["alt_too_short", "alt_too_long", "image_too_small", "extreme_aspect",
           "alt_shared_by_many_images", "image_with_many_alts", "rare_token",
           "language"]  # fmt: skip
RULES = ["download", "alt_length", "image_size", "aspect", "images_per_alt", "alts_per_image",
         "rare_tokens", "language"]  # fmt: skip


def shard(rng: np.random.Generator, start: int, rows: int) -> pa.Table:
    """One measurement shard: Zipf alt-texts and images, ~45% rejected."""
    alt_ids = rng.zipf(1.3, rows) % 400_000
    image_ids = rng.zipf(1.5, rows) % 1_000_000
    n_unigrams = rng.integers(1, 30, rows)
    width = rng.integers(80, 2000, rows)
    height = (width / rng.uniform(0.3, 3.5, rows)).astype(np.int64)
    rejected = rng.random(rows) < 0.45
    reason = rng.integers(0, len(REASONS), rows)
    language = np.where(rejected, None, np.where(rng.random(rows) < 0.9, "en", "de"))
    return pa.table(
        {
            "uid": [f"{start + i:016x}" for i in range(rows)],
            "url": [f"http://img{i % 97}.example/{i}.jpg" for i in image_ids],
            "alt": [f"alt text number {i} of the bench" for i in alt_ids],
            "page_url": [f"http://page.example/{(start + i) // 7}" for i in range(rows)],
            "kept": ~rejected,
            "reasons": [[REASONS[r]] if x else [] for r, x in zip(reason, rejected, strict=True)],
            "measured": [["bench=1"] if x else [] for x in rejected],
            "n_unigrams": n_unigrams.astype(np.int32),
            "language": language.tolist(),
            "original_width": width.astype(np.int32),
            "original_height": height.astype(np.int32),
            "sha256": [f"{i:064x}" for i in image_ids],
        },
        schema=MEASUREMENT_SCHEMA,
    )


def build_run(run: Path, rows: int, shards: int) -> None:
    rng = np.random.default_rng(0)
    (run / "measurements").mkdir(parents=True)
    (run / "rejects").mkdir()
    per_shard = rows // shards
    first, any_counts, kept = {}, {}, 0
    for index in range(shards):
        table = shard(rng, index * per_shard, per_shard)
        name = f"{index:05d}-of-{shards:05d}.parquet"
        pq.write_table(table, run / "measurements" / f"measurements-{name}")
        rejects = table.filter(pa.compute.invert(table.column("kept")))
        rejects = rejects.append_column("source", pa.nulls(rejects.num_rows, pa.string()))
        pq.write_table(rejects.select(REJECT_OUTPUT_SCHEMA.names).cast(REJECT_OUTPUT_SCHEMA),
                       run / "rejects" / f"rejects-{name}")  # fmt: skip
        kept += table.column("kept").to_numpy(zero_copy_only=False).sum()
        for reasons in rejects.column("reasons").to_pylist():
            first[reasons[0]] = first.get(reasons[0], 0) + 1
            any_counts[f"any/{reasons[0]}"] = any_counts.get(f"any/{reasons[0]}", 0) + 1
    stats = {
        "in": per_shard * shards, "kept": int(kept), "rejected": first, "counts": any_counts,
        "balanced": True, "mode": "all", "rules": RULES, "input": str(run / "no-images"),
        "config": {"min_unigrams": 3, "max_unigrams": 20, "min_shorter_side": 200,
                   "max_aspect_ratio": 3.0, "languages": ["en"]},
        "nsfw_applied": False, "eval_sets": {},
    }  # fmt: skip
    (run / "stats.json").write_text(json.dumps(stats))


PEER = """
import numpy as np, pandas as pd
m = pd.read_parquet(RUN + "/measurements")
r = pd.read_parquet(RUN + "/rejects")
np.histogram(m.n_unigrams.clip(0, 40), np.arange(0, 42) - 0.5)
short = np.fmin(m.original_width, m.original_height)
np.histogram(short.clip(0, 800), np.linspace(0, 820, 42) + 0.5)
np.histogram((np.fmax(m.original_width, m.original_height) / short).clip(1, 6), 51)
m.language.value_counts()
m.alt.value_counts().head(20); m.sha256.value_counts().head(20)
r["first"] = r.reasons.str[0]
r.sort_values("uid").groupby("first").head(4)
"""
STREAMED = "from pipeline.report.gather import gather; gather(RUN)"
FULL = "from pipeline.report.writer import write_report; write_report(RUN, print_summary=False)"


def timed(code: str, run: Path) -> tuple[float, float]:
    """(seconds, peak RSS MiB) of code in a fresh interpreter (imports not timed). The peak
    is VmHWM, the high-water mark of the interpreter's own memory: ru_maxrss would include
    this process's RSS, which a child inherits at fork."""
    script = (
        "import sys, time\n"
        f"sys.path.insert(0, {str(ROOT)!r})\nRUN = {str(run)!r}\n"
        "import pandas, pyarrow, numpy, matplotlib, apache_beam, pipeline.report.writer\n"
        "start = time.perf_counter()\n"
        f"{code}\n"
        "peak = [line.split()[1] for line in open('/proc/self/status') if 'VmHWM' in line]\n"
        "print(time.perf_counter() - start, peak[0])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], check=True, capture_output=True, text=True
    ).stdout
    seconds, rss_kib = out.split()[-2:]
    return float(seconds), int(rss_kib) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--shards", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        build_run(run, args.rows, args.shards)
        rows = json.loads((run / "stats.json").read_text())["in"]
        results = {
            "pandas, all in memory (peer)": timed(PEER, run),
            "gather, streamed": timed(STREAMED, run),
            "write_report (gather + plots + md/html)": timed(FULL, run),
        }
    peer_seconds, peer_rss = next(iter(results.values()))
    print(f"\nfilter report on {rows:,} measurement rows ({args.shards} shards)\n")
    print(f"{'variant':<42}{'seconds':>9}{'rows/s':>12}{'x peer time':>13}"
          f"{'peak RSS MiB':>14}{'x peer RSS':>12}")  # fmt: skip
    for name, (seconds, rss) in results.items():
        print(f"{name:<42}{seconds:>9.2f}{rows / seconds:>12,.0f}{seconds / peer_seconds:>13.2f}"
              f"{rss:>14,.0f}{rss / peer_rss:>12.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
