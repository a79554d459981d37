"""Score rule throughput: ScoreRule (Beam) against bare SavedModel calls on the same pairs.

    .venv/bin/python bench/score.py [--pairs 4000] [--batch-size 64] [--image-size 96]

Exports an untrained dual encoder of the small config (training/configs/small.yaml: the
demo's towers, the same compute as a trained one) and encodes ``--pairs`` random JPEGs whose
shorter side is ``--image-size`` (align-download's stored size in the demo) with captions of
six to ten words. Then times (1) the floor: ``serving_image`` and ``serving_text`` of the
export's SavedModel and the dot product, batch after batch in one plain loop, and (2) the
score rule as align-filter runs it (Parquet row groups as Arrow tables -> ScoreRule: scores,
the job-wide histogram and cut, the flags) on the DirectRunner, both including the model load.
Prints wall seconds, pairs/s, CPU seconds and pairs per CPU second (pairs/s per core: steadier
on a shared machine), each with its ratio to the floor.
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
import pyarrow as pa
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

WORDS = "a red blue green circle square ring cross on of the plain photo small large".split()


def build_export(folder: Path) -> str:
    from training.config import load_config
    from training.export import export_encoders
    from training.model import build_dual_encoder

    config = load_config("small")
    vocab = ["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]", *WORDS]
    return export_encoders(build_dual_encoder(config, len(vocab)), config, vocab, str(folder))


def pairs(count: int, size: int) -> tuple[list[bytes], list[str]]:
    rng = np.random.default_rng(0)
    images, texts = [], []
    for _ in range(count):
        pixels = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
        image = Image.fromarray(pixels).resize((size * 4 // 3, size), Image.Resampling.BILINEAR)
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=90)
        images.append(buffer.getvalue())
        texts.append(" ".join(rng.choice(WORDS, int(rng.integers(6, 11)))))
    return images, texts


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def floor(export: str, images: list[bytes], texts: list[str], batch: int) -> tuple[float, float]:
    """The bare SavedModel: load, then both signatures and the dot product per batch."""
    import tensorflow as tf
    import tensorflow_text  # noqa: F401

    start, cpu = time.perf_counter(), cpu_seconds()
    model = tf.saved_model.load(export + "/saved_model")
    for first in range(0, len(images), batch):
        image = model.serving_image(tf.constant(images[first : first + batch]))["embeddings"]
        text = model.serving_text(tf.constant(texts[first : first + batch]))["embeddings"]
        np.sum(image.numpy() * text.numpy(), axis=1)
    return time.perf_counter() - start, cpu_seconds() - cpu


def beam_job(
    export: str, images: list[bytes], texts: list[str], batch: int, tmp: Path
) -> tuple[float, float]:
    """ScoreRule as align-filter runs it, with a keep-fraction cut (the global combine)."""
    import apache_beam as beam
    import pyarrow.parquet as pq

    from pipeline.filter.score import ScoreRule, settings_for
    from pipeline.shards import ReadTables

    n = len(images)
    table = pa.table(
        {
            "uid": [f"{i:016x}" for i in range(n)],
            "image": images,
            "alt": texts,
            "bid": ["bench"] * n,
            "row": pa.array(range(n), pa.uint32()),
        }
    )
    pq.write_table(table, tmp / "pairs.parquet", row_group_size=1024)
    start, cpu = time.perf_counter(), cpu_seconds()
    settings = settings_for([export], batch)
    with beam.Pipeline() as pipeline:
        flagged = (
            pipeline
            | ReadTables(str(tmp / "pairs.parquet"))
            | ScoreRule(settings, min_score=-1.0, keep_fraction=0.7)
            | beam.MapTuple(lambda bid, flags: flags.num_rows)
            | beam.CombineGlobally(sum)
        )
        flagged | beam.Map(lambda total: print(f"  (flagged {total:,} of {n:,})"))
    return time.perf_counter() - start, cpu_seconds() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=4000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--image-size", type=int, default=96)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        export = build_export(Path(tmp) / "model")
        images, texts = pairs(args.pairs, args.image_size)
        floor(export, images[: args.batch_size * 2], texts, args.batch_size)  # warm up
        results = {
            "bare SavedModel loop (floor)": floor(export, images, texts, args.batch_size),
            "ScoreRule on the DirectRunner": beam_job(
                export, images, texts, args.batch_size, Path(tmp)
            ),
        }
    base, base_cpu = next(iter(results.values()))
    print(f"\nImage-text scoring of {args.pairs:,} pairs ({args.image_size}px JPEGs), small "
          f"config export, batch {args.batch_size}\n")  # fmt: skip
    print(f"{'variant':<34}{'seconds':>9}{'pairs/s':>9}{'x floor':>9}{'CPU s':>8}"
          f"{'pairs/CPU s':>13}{'x floor':>9}")  # fmt: skip
    for name, (seconds, cpu) in results.items():
        print(f"{name:<34}{seconds:>9.2f}{args.pairs / seconds:>9,.1f}{base / seconds:>9.2f}"
              f"{cpu:>8.1f}{args.pairs / cpu:>13,.1f}{base_cpu / cpu:>9.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
