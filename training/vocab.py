"""align-vocab's work: learns the WordPiece vocabulary from the training shards' text (ALIGN:
100k). Its command line is training/cli/vocab.py."""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Sequence

import pyarrow as pa
import pyarrow.parquet as pq
import tensorflow as tf

from training.config import UsageError
from training.data import list_shards

RESERVED = ["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"]


def text_files(pattern: str) -> list[str]:
    """The files to read text from: Parquet sidecars where they sit beside the TFRecords."""
    if pattern.endswith(".parquet"):
        files = sorted(tf.io.gfile.glob(pattern))
        if not files:
            raise FileNotFoundError(f"no shards match {pattern}")
        return files
    shards = list_shards(pattern)
    sidecars = [shard[: -len(".tfrecord")] + ".parquet" for shard in shards]
    if all(s.endswith(".parquet") and tf.io.gfile.exists(s) for s in sidecars):
        return sidecars
    return shards


def sidecar_text_column(names: Sequence[str], path: str) -> str:
    """The sidecar keeps the pipeline's column name ``alt``; the TFRecord calls it ``text``."""
    for column in ("alt", "text"):
        if column in names:
            return column
    raise FileNotFoundError(f"{path} has neither an 'alt' nor a 'text' column")


def read_texts(files: Sequence[str], batch_size: int = 4096) -> Iterator[list[str]]:
    """Batches of ``text`` in file order (Parquet column, or parsed from TFRecord examples)."""
    for path in files:
        if path.endswith(".parquet"):
            with tf.io.gfile.GFile(path, "rb") as handle:  # sidecars are small: no image bytes
                parquet = pq.ParquetFile(pa.BufferReader(handle.read()))
            column = sidecar_text_column(parquet.schema_arrow.names, path)
            for batch in parquet.iter_batches(batch_size=batch_size, columns=[column]):
                yield batch.column(column).to_pylist()
        else:
            feature = {"text": tf.io.FixedLenFeature([], tf.string)}
            records = tf.data.TFRecordDataset(path).batch(batch_size)
            for batch in records:
                texts = tf.io.parse_example(batch, feature)["text"].numpy()
                yield [t.decode("utf-8") for t in texts]


def learn_vocabulary(files: Sequence[str], vocab_size: int, lowercase: bool = True) -> list[str]:
    """WordPiece pieces learned from every text of ``files``, reserved tokens first.

    keras_hub's learner counts words and then picks pieces by count, so the same files in the
    same (sorted) order give the same vocabulary; a test checks it.
    """
    import keras_hub  # noqa: PLC0415 - slow import, only once the inputs exist

    dataset = tf.data.Dataset.from_generator(
        lambda: read_texts(files), output_signature=tf.TensorSpec([None], tf.string)
    )
    return keras_hub.tokenizers.compute_word_piece_vocabulary(
        dataset,
        vocabulary_size=vocab_size,
        lowercase=lowercase,
        strip_accents=False,
        reserved_tokens=RESERVED,
    )


def write_vocabulary(vocabulary: Sequence[str], path: str) -> None:
    """One piece per line, written to a temporary name and renamed, so readers never see half."""
    parent = path.rsplit("/", 1)[0] if "/" in path else "."
    tf.io.gfile.makedirs(parent)
    temporary = f"{path}.tmp"
    with tf.io.gfile.GFile(temporary, "w") as handle:
        handle.write("".join(f"{piece}\n" for piece in vocabulary))
    tf.io.gfile.rename(temporary, path, overwrite=True)


def build_vocabulary(args: argparse.Namespace) -> list[str]:
    """align-vocab's work (its flags: training/cli/vocab.py): learns and writes the
    vocabulary, returns its pieces."""
    if args.vocab_size <= len(RESERVED):
        raise UsageError(f"--vocab-size must exceed the {len(RESERVED)} reserved tokens")
    files = text_files(args.shards)
    vocabulary = learn_vocabulary(files, args.vocab_size, lowercase=not args.cased)
    write_vocabulary(vocabulary, args.output)
    print(f"align-vocab: {len(vocabulary)} pieces from {len(files)} files -> {args.output}")
    return vocabulary
