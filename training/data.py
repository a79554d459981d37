"""tf.data input over the training shards: interleaved files, decode, crop, tokenise, batch."""

from __future__ import annotations

import tensorflow as tf

from training.config import TrainConfig, UsageError
from training.preprocess import decode_image, resize_and_crop
from training.tokenize import AlignTokenizer

FEATURES = {
    "image/encoded": tf.io.FixedLenFeature([], tf.string),
    "text": tf.io.FixedLenFeature([], tf.string),
    "uid": tf.io.FixedLenFeature([], tf.string, default_value=""),
}
ODD_HEX = "[13579bdfBDF]"


def in_uid_half(uid: tf.Tensor, half: int) -> tf.Tensor:
    """Whether a uid is in ``half``: the parity of its last hex digit, as filters.scoring.uid_half
    computes it on the filter's workers (the two must agree: cross-fitting rests on it)."""
    odd = tf.strings.regex_full_match(uid, f".*{ODD_HEX}")
    return tf.equal(odd, tf.constant(half == 1))


def list_shards(pattern: str) -> list[str]:
    """The TFRecord files of a glob (local or gs://), sorted; a directory means its shards/."""
    if tf.io.gfile.isdir(pattern):
        base = pattern.rstrip("/")
        nested = f"{base}/shards/*.tfrecord"
        pattern = nested if tf.io.gfile.glob(nested) else f"{base}/*.tfrecord"
    files = sorted(tf.io.gfile.glob(pattern))
    if not files:
        raise FileNotFoundError(f"no training shards match {pattern}")
    return files


def make_dataset(
    pattern: str,
    config: TrainConfig,
    tokenizer: AlignTokenizer,
    batch_size: int,
    training: bool = True,
    input_context: tf.distribute.InputContext | None = None,
    seed: int | None = None,
) -> tf.data.Dataset:
    """Batches of {"images", "token_ids", "padding_mask"} from the shards of ``pattern``.

    Training: files sharded per input pipeline (one per host in multi-worker runs), shuffled
    and repeated forever, read interleaved, records shuffled, cropped at random. Evaluation: one
    pass in file order with central crops. Batches always drop the remainder so every step has
    the same shape (and the same number of negatives).
    """
    seed = config.seed if seed is None else seed
    ordered = config.deterministic or not training  # evaluation keeps the file order
    dataset = read_records(list_shards(pattern), training, ordered, input_context, seed)
    if config.uid_half is not None:
        dataset = dataset.filter(lambda record: in_uid_half(parse_uid(record), config.uid_half))
    if training:
        dataset = dataset.shuffle(config.shuffle_buffer, seed=seed + 1)
    dataset = dataset.enumerate().map(
        lambda index, record: decode_pair(record, index, config, training, seed),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=ordered,
    )
    dataset = dataset.batch(batch_size, drop_remainder=True)

    def tokenize(batch):
        return {"images": batch["images"], **tokenizer(batch["text"])}

    dataset = dataset.map(tokenize, num_parallel_calls=tf.data.AUTOTUNE, deterministic=ordered)
    options = tf.data.Options()
    options.deterministic = ordered
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.OFF
    return dataset.with_options(options).prefetch(tf.data.AUTOTUNE)


def read_records(
    files: list[str],
    training: bool,
    ordered: bool,
    input_context: tf.distribute.InputContext | None,
    seed: int,
) -> tf.data.Dataset:
    """This input pipeline's serialised records: its share of the files (or, with fewer files
    than pipelines, of the records), read interleaved; in training shuffled and repeated."""
    pipelines = input_context.num_input_pipelines if input_context else 1
    pipeline_id = input_context.input_pipeline_id if input_context else 0
    dataset = tf.data.Dataset.from_tensor_slices(files)
    by_file = pipelines > 1 and len(files) >= pipelines
    if by_file:
        dataset = dataset.shard(pipelines, pipeline_id)
    if training:
        dataset = dataset.shuffle(len(files), seed=seed, reshuffle_each_iteration=True).repeat()
    dataset = dataset.interleave(
        tf.data.TFRecordDataset,
        cycle_length=min(len(files), 16),
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=ordered,
    )
    if pipelines > 1 and not by_file:
        dataset = dataset.shard(pipelines, pipeline_id)  # fewer files than hosts: split records
    return dataset


def parse_uid(record: tf.Tensor) -> tf.Tensor:
    return tf.io.parse_single_example(record, {"uid": FEATURES["uid"]})["uid"]


def decode_pair(
    record: tf.Tensor, index: tf.Tensor, config: TrainConfig, training: bool, seed: int
) -> dict:
    """One record -> {"images": float32 [S, S, 3], "text"}: decoded, resized and cropped (at
    random in training, keyed by the seed and the record's index, so a run repeats)."""
    example = tf.io.parse_single_example(record, FEATURES)
    image = decode_image(example["image/encoded"])
    element_seed = tf.stack([tf.cast(seed, tf.int64), index])
    size = (config.image_size, config.resize_size)
    return {
        "images": resize_and_crop(image, *size, training=training, seed=element_seed),
        "text": example["text"],
    }


def distributed_dataset(
    strategy: tf.distribute.Strategy,
    pattern: str,
    config: TrainConfig,
    tokenizer: AlignTokenizer,
    training: bool = True,
    seed: int | None = None,
):
    """One input pipeline per host, each yielding its replicas' share of the global batch."""

    def dataset_fn(context: tf.distribute.InputContext) -> tf.data.Dataset:
        batch = context.get_per_replica_batch_size(config.batch_size)
        return make_dataset(pattern, config, tokenizer, batch, training, context, seed)

    if config.batch_size % strategy.num_replicas_in_sync:
        raise UsageError(
            f"batch_size {config.batch_size} is not divisible by "
            f"{strategy.num_replicas_in_sync} replicas"
        )
    return strategy.distribute_datasets_from_function(dataset_fn)
