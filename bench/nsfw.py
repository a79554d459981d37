"""NSFW hook throughput: NsfwScores (Beam RunInference) against a plain loop of the same work.

    .venv/bin/python bench/nsfw.py [--images 2000] [--batch-size 32] [--size 224]

Saves an untrained MobileNetV3-Small classifier head (a real convolutional network of the
size NSFW classifiers have, 1 sigmoid output, ``--size`` input) as a .keras file and encodes
``--images`` random 346 px JPEGs (the size align-download stores). Then times (1) the floor:
decode, resize and score in batches in one plain loop with the hook's own functions, and
(2) NsfwScores on the DirectRunner as the filter job feeds it (Parquet row groups read as
Arrow batches -> RunInference -> (uid, score)), both
including the model load. Prints wall seconds, images/s and CPU seconds (steadier on a shared
machine) of each, with the ratio to the floor: what Beam's batching and model sharing cost.
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.filter.nsfw_scores import NsfwScores, decode_resized, load_classifier, probabilities  # noqa: E402


def build_model(path: Path, size: int) -> None:
    import keras

    backbone = keras.applications.MobileNetV3Small(
        input_shape=(size, size, 3), include_top=False, weights=None, pooling="avg"
    )
    outputs = keras.layers.Dense(1, activation="sigmoid")(backbone.output)
    keras.Model(backbone.input, outputs).save(path)


def jpegs(count: int) -> list[bytes]:
    rng = np.random.default_rng(0)
    out = []
    for _ in range(count):
        pixels = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
        image = Image.fromarray(pixels).resize((346, 461), Image.Resampling.BILINEAR)
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=90)
        out.append(buffer.getvalue())
    return out


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def floor(model_path: str, images: list[bytes], batch_size: int) -> tuple[float, float]:
    start, cpu = time.perf_counter(), cpu_seconds()
    classifier = load_classifier(model_path)
    for first in range(0, len(images), batch_size):
        batch = [decode_resized(data, classifier.height, classifier.width) for data in
                 images[first : first + batch_size]]  # fmt: skip
        probabilities(classifier.predict(np.stack(batch)), len(batch))
    return time.perf_counter() - start, cpu_seconds() - cpu


def beam_job(
    model_path: str, images: list[bytes], batch_size: int, tmp: Path
) -> tuple[float, float]:
    """The hook as the filter job runs it: Arrow batches read from Parquet, scores out."""
    import apache_beam as beam
    import pyarrow.parquet as pq

    from pipeline.shards import ReadTables

    table = pa.table({"uid": [f"{i:08d}" for i in range(len(images))], "image": images})
    pq.write_table(table, tmp / "images.parquet", row_group_size=256)
    output = tmp / "scores.jsonl"
    start, cpu = time.perf_counter(), cpu_seconds()
    with beam.Pipeline() as pipeline:
        _ = (
            pipeline
            | ReadTables(str(tmp / "images.parquet"))
            | NsfwScores(model_path, batch_size)
            | beam.MapTuple(lambda uid, score: json.dumps([uid, score]))
            | beam.io.WriteToText(str(output), shard_name_template="")
        )
    seconds, cpu = time.perf_counter() - start, cpu_seconds() - cpu
    assert len(output.read_text().splitlines()) == len(images)
    return seconds, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--size", type=int, default=224)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        model_path = str(Path(tmp) / "classifier.keras")
        build_model(Path(model_path), args.size)
        images = jpegs(args.images)
        floor(model_path, images[: args.batch_size * 2], args.batch_size)  # warm up
        results = {
            "plain loop, same functions (floor)": floor(model_path, images, args.batch_size),
            "NsfwScores on the DirectRunner": beam_job(
                model_path, images, args.batch_size, Path(tmp)
            ),
        }
    base, base_cpu = next(iter(results.values()))
    print(f"\nNSFW scoring of {args.images:,} 346px JPEGs, MobileNetV3-Small {args.size}px, "
          f"batch {args.batch_size}\n")  # fmt: skip
    print(f"{'variant':<40}{'seconds':>9}{'images/s':>10}{'x floor':>9}{'CPU s':>8}{'x floor':>9}")
    for name, (seconds, cpu) in results.items():
        rate = args.images / seconds
        print(f"{name:<40}{seconds:>9.2f}{rate:>10,.1f}{base / seconds:>9.2f}"
              f"{cpu:>8.1f}{base_cpu / cpu:>9.2f}")  # fmt: skip


if __name__ == "__main__":
    main()
