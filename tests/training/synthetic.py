"""Colour-shape image-text pairs written as training shards: the trainer tests' and
bench/train.py's test bed, needing no crawl (a test helper, not part of the package)."""

from __future__ import annotations

import io
import random
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import tensorflow as tf
from PIL import Image, ImageDraw

COLOURS = {
    "red": (220, 30, 30),
    "green": (30, 170, 60),
    "blue": (40, 70, 220),
    "yellow": (235, 210, 40),
    "purple": (140, 50, 170),
}
SHAPES = ("circle", "square", "triangle", "cross", "ring")
TEMPLATES = (
    "a {colour} {shape}",
    "photo of a {colour} {shape} on a plain background",
    "{colour} {shape} icon",
    "a picture showing one {colour} {shape}",
)


def render(colour: str, shape: str, size: int, rng: random.Random) -> Image.Image:
    """One shape of one colour at a random place and scale on a light random background."""
    background = tuple(rng.randint(200, 255) for _ in range(3))
    image = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(image)
    radius = rng.uniform(0.22, 0.4) * size
    cx, cy = (rng.uniform(radius, size - radius) for _ in range(2))
    box = (cx - radius, cy - radius, cx + radius, cy + radius)
    fill = COLOURS[colour]
    if shape == "circle":
        draw.ellipse(box, fill=fill)
    elif shape == "square":
        draw.rectangle(box, fill=fill)
    elif shape == "triangle":
        draw.polygon(
            [(cx, cy - radius), (cx - radius, cy + radius), (cx + radius, cy + radius)], fill
        )
    elif shape == "cross":
        w = radius / 3
        draw.rectangle((cx - w, cy - radius, cx + w, cy + radius), fill=fill)
        draw.rectangle((cx - radius, cy - w, cx + radius, cy + w), fill=fill)
    else:
        draw.ellipse(box, outline=fill, width=max(2, int(radius / 3)))
    return image


def make_pairs(n: int, size: int = 48, seed: int = 0) -> list[dict]:
    """``n`` pairs over the 25 colour-shape classes: JPEG bytes, a caption and the class."""
    rng = random.Random(seed)
    pairs = []
    for index in range(n):
        colour, shape = rng.choice(sorted(COLOURS)), rng.choice(SHAPES)
        buffer = io.BytesIO()
        render(colour, shape, size, rng).save(buffer, format="JPEG", quality=90)
        text = rng.choice(TEMPLATES).format(colour=colour, shape=shape)
        pairs.append(
            {
                "uid": f"{seed:04d}{index:012d}",
                "url": f"http://127.0.0.2/{index}.jpg",
                "text": text,
                "image": buffer.getvalue(),
                "class_name": f"{colour} {shape}",
                "width": size,
                "height": size,
            }
        )
    return pairs


def example(pair: dict) -> bytes:
    """The shard record contract: a serialised tf.train.Example."""

    def b(value):
        return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))

    def i(value):
        return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))

    features = {
        "image/encoded": b(pair["image"]),
        "image/format": b(b"jpeg"),
        "image/height": i(pair["height"]),
        "image/width": i(pair["width"]),
        "text": b(pair["text"].encode()),
        "uid": b(pair["uid"].encode()),
        "url": b(pair["url"].encode()),
    }
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


def write_shards(directory: str | Path, pairs: list[dict], num_shards: int = 2) -> str:
    """Writes DIR/shards/align-0000k-of-0000N.tfrecord + .parquet sidecars; returns the glob."""
    shards = Path(directory) / "shards"
    shards.mkdir(parents=True, exist_ok=True)
    for k in range(num_shards):
        part = pairs[k::num_shards]
        stem = shards / f"align-{k:05d}-of-{num_shards:05d}"
        with tf.io.TFRecordWriter(f"{stem}.tfrecord") as writer:
            for pair in part:
                writer.write(example(pair))
        columns = ("uid", "url", "text", "width", "height")
        table = pa.table({c: [p[c] for p in part] for c in columns})
        pq.write_table(table, f"{stem}.parquet")
    return str(shards / "align-*.tfrecord")
