"""align-embed: image and text embeddings to Parquet, and nearest-neighbour queries over them.

The real-time retrieval a dual encoder is made for: embed a collection once (``images`` or
``texts``), then ``query`` it with a text or an image; cosine similarity, exact top-k. Both
writing and querying stream (row groups in, record batches out), so an index need not fit
in memory. An image that does not decode gets a row with a null embedding and its error,
never a crash and never a silent gap. The command line is training/cli/embed.py.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import tensorflow as tf

from training.config import UsageError
from training.encoders import DEFAULT_BATCH_SIZE, Encoders, ExportError, ImageDecodeError
from training.evaluate import IMAGE_EXTENSIONS

CHUNK = 1024  # rows per Parquet row group and per embedding call
READ_BATCH = 65536  # index rows scored at once by a query


def index_schema(key: str, embed_dim: int, model_dir: str) -> pa.Schema:
    """``key`` (path or text), ``embedding`` list<float32> (null if the item failed), ``error``."""
    fields = [
        pa.field(key, pa.string(), nullable=False),
        pa.field("embedding", pa.list_(pa.float32())),
        pa.field("error", pa.string()),
    ]
    meta = {
        "align.kind": "images" if key == "path" else "texts",
        "align.embed_dim": str(embed_dim),
        "align.model_dir": model_dir,
    }
    return pa.schema(fields, metadata=meta)


def list_images(folder: str) -> list[str]:
    """Every image file under ``folder`` (recursively), sorted: a deterministic index order."""
    if not tf.io.gfile.isdir(folder):
        raise FileNotFoundError(f"image folder {folder} does not exist")
    found = [
        os.path.join(root, name)
        for root, _, names in tf.io.gfile.walk(folder)
        for name in names
        if name.lower().endswith(IMAGE_EXTENSIONS)
    ]
    return sorted(found)


def read_lines(path: str) -> list[str]:
    """One text per non-blank line (surrounding whitespace stripped)."""
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"text file {path} does not exist")
    with tf.io.gfile.GFile(path, "r") as handle:
        return [line.strip() for line in handle.read().splitlines() if line.strip()]


def _embedding_column(embeddings: np.ndarray | None, valid: np.ndarray, dim: int) -> pa.Array:
    """A list<float32> column with nulls where ``valid`` is False."""
    values = np.zeros((len(valid), dim), np.float32)
    if embeddings is not None and valid.any():
        values[valid] = embeddings
    offsets = pa.array(np.arange(len(valid) + 1, dtype=np.int32) * dim)
    return pa.ListArray.from_arrays(offsets, pa.array(values.reshape(-1)), mask=pa.array(~valid))


def image_batches(encoders: Encoders, paths: list[str]) -> Iterator[pa.RecordBatch]:
    """Embeds images chunk by chunk; a file that does not decode keeps its row, with the error."""
    for start in range(0, len(paths), CHUNK):
        chunk = paths[start : start + CHUNK]
        embeddings, errors = encoders.try_embed_images(chunk)
        valid = np.array([error is None for error in errors])
        yield pa.record_batch(
            [
                pa.array(chunk),
                _embedding_column(embeddings[valid], valid, encoders.embed_dim),
                pa.array(errors, pa.string()),
            ],
            names=["path", "embedding", "error"],
        )


def text_batches(encoders: Encoders, texts: list[str]) -> Iterator[pa.RecordBatch]:
    for start in range(0, len(texts), CHUNK):
        chunk = texts[start : start + CHUNK]
        valid = np.ones(len(chunk), bool)
        yield pa.record_batch(
            [
                pa.array(chunk),
                _embedding_column(encoders.embed_texts(chunk), valid, encoders.embed_dim),
                pa.nulls(len(chunk), pa.string()),
            ],
            names=["text", "embedding", "error"],
        )


def _filesystem(path: str) -> tuple[pafs.FileSystem, str]:
    """Arrow's filesystem for a local path or a URI (gs://, s3://, ...)."""
    if "://" in path:
        return pafs.FileSystem.from_uri(path)
    return pafs.LocalFileSystem(), os.path.abspath(path)


def write_index(path: str, schema: pa.Schema, batches: Iterator[pa.RecordBatch]) -> int:
    """Streams batches into ``path`` through a temporary name; returns the rows written."""
    fs, target = _filesystem(path)
    fs.create_dir(os.path.dirname(target), recursive=True)
    temporary, rows = target + ".tmp", 0
    with pq.ParquetWriter(temporary, schema, filesystem=fs, compression="zstd") as writer:
        for batch in batches:
            writer.write_table(pa.Table.from_batches([batch]).cast(schema))
            rows += batch.num_rows
    fs.move(temporary, target)
    return rows


def nearest(index: str, query: np.ndarray, k: int) -> list[dict]:
    """Exact cosine top-k over an index file, streamed; ties go to the earlier row."""
    fs, source = _filesystem(index)
    if fs.get_file_info(source).type != pafs.FileType.File:
        raise FileNotFoundError(f"index {index} does not exist")
    query = np.asarray(query, np.float32).reshape(-1)
    query = query / max(float(np.linalg.norm(query)), 1e-12)
    with fs.open_input_file(source) as handle:
        parquet = pq.ParquetFile(handle)
        key = _index_key(parquet.schema_arrow, index)
        best_scores, best_items = np.zeros(0, np.float32), []
        for batch in parquet.iter_batches(batch_size=READ_BATCH, columns=[key, "embedding"]):
            items, matrix = _valid_rows(batch, key, len(query), index)
            if not items:
                continue
            scores = np.concatenate([best_scores, _unit_rows(matrix) @ query])
            items = best_items + items
            keep = np.lexsort((np.arange(len(scores)), -scores))[:k]
            best_scores, best_items = scores[keep], [items[i] for i in keep]
    return [
        {"rank": i + 1, "score": float(s), key: item}
        for i, (s, item) in enumerate(zip(best_scores, best_items, strict=True))
    ]


def _index_key(schema: pa.Schema, index: str) -> str:
    for key in ("path", "text"):
        if key in schema.names and "embedding" in schema.names:
            return key
    raise UsageError(f"{index} is not an align-embed index (needs path|text and embedding)")


def _valid_rows(batch: pa.RecordBatch, key: str, dim: int, index: str):
    embedding = batch.column("embedding")
    valid = np.asarray(embedding.is_valid())
    items = [item for item, ok in zip(batch.column(key).to_pylist(), valid, strict=True) if ok]
    values = embedding.filter(pa.array(valid)).flatten().to_numpy()
    if items and values.size != len(items) * dim:
        raise UsageError(f"{index} holds embeddings of another size than the model's {dim}")
    return items, values.reshape(len(items), dim)


def _unit_rows(matrix: np.ndarray) -> np.ndarray:
    return matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)


def format_results(results: list[dict], key: str) -> str:
    lines = [f"  {'rank':>4}  {'score':>7}  {key}"]
    lines += [f"  {r['rank']:>4}  {r['score']:7.4f}  {r[key]}" for r in results]
    return "\n".join(lines)


def embed(args: argparse.Namespace) -> dict:
    """align-embed images|texts (its flags: training/cli/embed.py): writes the index, returns
    its summary."""
    try:
        return _embed(args)
    except (ExportError, ImageDecodeError) as error:
        raise UsageError(str(error)) from None


def query(args: argparse.Namespace) -> list[dict]:
    """align-embed query: prints and returns the index's nearest items."""
    try:
        return _query(args)
    except (ExportError, ImageDecodeError) as error:
        raise UsageError(str(error)) from None


def _embed(args: argparse.Namespace) -> dict:
    items = list_images(args.input) if args.command == "images" else read_lines(args.input)
    encoders = Encoders.load(args.model_dir, batch_size=args.batch_size or DEFAULT_BATCH_SIZE)
    key = "path" if args.command == "images" else "text"
    batches = (image_batches if key == "path" else text_batches)(encoders, items)
    rows = write_index(args.output, index_schema(key, encoders.embed_dim, args.model_dir), batches)
    summary = {"rows": rows, "output": args.output, "embed_dim": encoders.embed_dim}
    print(json.dumps(summary))
    return summary


def _query(args: argparse.Namespace) -> list[dict]:
    encoders = Encoders.load(args.model_dir)
    if args.text is not None:
        query = encoders.embed_texts([args.text])[0]
    else:
        query = encoders.embed_images([args.image])[0]
    results = nearest(args.index, query, args.k)
    key = next((k for k in ("path", "text") if results and k in results[0]), "item")
    print(format_results(results, key))
    return results
