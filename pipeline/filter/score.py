"""The image-text score rule on Beam workers: the export of align-train embeds each downloaded
pair's image and alt-text, the cosine is the score, and pairs below ``min_score`` or outside
the job-wide top ``keep_fraction`` are flagged.

The model is the export's SavedModel (``<export>/saved_model``: ``serving_image(image_bytes)``
and ``serving_text(text)``, unit embeddings; docs/training.md), loaded with TensorFlow and
tensorflow-text only, once per worker process (``beam.utils.shared``: every DoFn instance
and bundle of a process reuses it). Images go in as the stored JPEG bytes of the images
Parquet, so a batch holds only bytes until it reaches the model. Only pairs whose download is
``ok`` are scored, and align-download wrote those bytes itself (decoded, resized, re-encoded),
so the export decodes them; a batch it could not decode would fail the job, not pass unjudged.

Cross-fitting: given two exports, each trained on one uid half (``align-train --uid-half``;
its ``encoders.json`` says which), each pair is scored by the model that did not train on
it, so no model grades its own homework (filters/scoring.py: ``scorer_for``).

The keep-fraction cut is one number for the whole job: every worker's scores go into a
fixed-bin histogram, the histograms are summed by one global combine, and the cut read from
the sum reaches the flagging step as a side input.

As for the NSFW hook, workers that score need the 'train' extra (TensorFlow, tensorflow-text).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.utils import shared

from commandline.extras import require
from filters.rules.image_text_score import check_score
from filters.rules.semantic_dedup import check_semantic_duplicate
from filters.scoring import (
    HISTOGRAM_BINS,
    histogram,
    hyperplanes,
    keep_fraction_cut,
    lsh_keys,
    near_duplicates,
    scorer_for,
)
from pipeline.filter.counts import FLAG_SCHEMA
from pipeline.shards import split_by_column

METRICS_NAMESPACE = "pipeline.score"
NEEDED_BY = "the image-text score rule (--score-model)"
SAVED_MODEL = "saved_model"
# What MeasureBatch sends the rule per batch: the rows with a downloaded image.
PAIR_COLUMNS = ("bid", "row", "uid", "image", "alt")
SCORES_SCHEMA = pa.schema([("bid", pa.string()), ("row", pa.uint32()), ("score", pa.float64())])
EMBEDDINGS = "embeddings"  # ScorePairs' tagged output for the semantic near-duplicates


@dataclass(frozen=True)
class ScoreSettings:
    """The score rule's models and how it batches them."""

    exports: tuple[str, ...]  # align-train exports (the folder holding saved_model/)
    trained_halves: tuple[int | None, ...]  # the uid half each export trained on, or None
    batch_size: int = 64
    semantic_dedup: bool = False  # also emit the first export's image embeddings


def trained_half(export: str) -> int | None:
    """The uid half an export was trained on (its encoders.json ``uid_half``), None for all."""
    with FileSystems.open(FileSystems.join(export, "encoders.json")) as handle:
        return json.load(handle).get("uid_half")


def self_grading_warning(trained_halves: tuple[int | None, ...]) -> str | None:
    """What to tell a user who scores with one export: nothing here can tell whether it
    trained on the pairs it scores, and if it did, it grades its own homework (a clean score
    for every pair it memorised). Two exports, one per uid half, cannot."""
    if len(trained_halves) != 1:
        return None
    trained = "every pair" if trained_halves[0] is None else f"uid half {trained_halves[0]}"
    return (
        f"--score-model: one export (trained on {trained} of its input) scores every pair; "
        "if these pairs were in its training data it grades its own homework. Cross-fit "
        "instead: two exports trained with align-train --uid-half 0 and --uid-half 1, "
        "each scoring the half the other trained on (docs/stages.md)."
    )


def settings_for(
    exports: Sequence[str], batch_size: int = 64, semantic_dedup: bool = False
) -> ScoreSettings:
    """Checks the exports on the driver (the extra, each SavedModel, cross-fitting's halves)."""
    require("train", NEEDED_BY)
    for export in exports:
        if not FileSystems.exists(FileSystems.join(export, SAVED_MODEL, "saved_model.pb")):
            raise FileNotFoundError(f"--score-model {export}: no {SAVED_MODEL}/ (an export?)")
    halves = tuple(trained_half(export) for export in exports)
    scorer_for("0", halves)  # raises on an impossible combination, before any worker starts
    warning = self_grading_warning(halves)
    if warning:
        logging.warning(warning)
    if batch_size < 1:
        raise ValueError(f"score batch size must be at least 1, got {batch_size}")
    return ScoreSettings(tuple(exports), halves, batch_size, semantic_dedup)


class Scorers:
    """The loaded exports: ``embed(i, images, texts)`` -> unit (image, text) embeddings."""

    def __init__(self, exports: Sequence[str]):
        require("train", NEEDED_BY)
        import tensorflow as tf  # noqa: PLC0415 - lazy: only workers that score pay for it
        import tensorflow_text  # noqa: PLC0415, F401 - registers the tokeniser's ops

        self.tf = tf
        self.models = [tf.saved_model.load(FileSystems.join(e, SAVED_MODEL)) for e in exports]
        LOADS.append(tuple(exports))

    def embed(self, index: int, images: list[bytes], texts: list[str]):
        text = self.models[index].serving_text(text=self.tf.constant(texts, self.tf.string))
        return self.embed_images(index, images), text["embeddings"].numpy()

    def embed_images(self, index: int, images: list[bytes]) -> np.ndarray:
        model, tf = self.models[index], self.tf
        return model.serving_image(image_bytes=tf.constant(images, tf.string))["embeddings"].numpy()


# Every load in this process, for the tests (a worker process loads once).
LOADS: list[tuple[str, ...]] = []
_SHARED = shared.Shared()


def cosine_scores(scorers, index: int, images: list[bytes], texts: list[str], batch: int):
    """The cosine of each (image, text) and the image embeddings, ``batch`` pairs per call."""
    scores, vectors = [], []
    for start in range(0, len(images), batch):
        image, text = scorers.embed(
            index, images[start : start + batch], texts[start : start + batch]
        )
        scores.append(np.sum(image * text, axis=1))
        vectors.append(image)
    if not scores:
        return np.zeros(0), np.zeros((0, 0), np.float32)
    return np.concatenate(scores), np.concatenate(vectors)


def image_embeddings(scorers, index: int, images: list[bytes], batch: int) -> np.ndarray:
    parts = [
        scorers.embed_images(index, images[start : start + batch])
        for start in range(0, len(images), batch)
    ]
    return np.concatenate(parts)


class ScorePairs(beam.DoFn):
    """Tables of PAIR_COLUMNS -> tables of (bid, row, score), each pair scored by its model."""

    def __init__(self, settings: ScoreSettings):
        self.settings = settings

    def setup(self) -> None:
        exports = self.settings.exports
        # One load per process, whichever DoFn instance asks first; keyed by the exports.
        self.scorers = _SHARED.acquire(lambda: Scorers(exports), tag=json.dumps(exports))

    def process(self, table: pa.Table):
        uids = table.column("uid").to_pylist()
        models = np.array([scorer_for(uid, self.settings.trained_halves) for uid in uids])
        images = table.column("image").to_pylist()
        texts = [alt or "" for alt in table.column("alt").to_pylist()]
        scores, first_model = np.zeros(len(uids)), [None] * len(uids)
        batch = self.settings.batch_size
        for index in range(len(self.settings.exports)):
            rows = np.flatnonzero(models == index)
            if rows.size:
                scored, vectors = cosine_scores(
                    self.scorers, index, [images[r] for r in rows], [texts[r] for r in rows], batch
                )
                scores[rows] = scored
                if index == 0:
                    for row, vector in zip(rows, vectors, strict=True):
                        first_model[row] = vector
        Metrics.counter(METRICS_NAMESPACE, "scored").inc(len(uids))
        yield pa.table(
            {"bid": table.column("bid"), "row": table.column("row"), "score": scores},
            schema=SCORES_SCHEMA,
        )
        if self.settings.semantic_dedup and uids:
            yield beam.pvalue.TaggedOutput(
                EMBEDDINGS, self._embeddings(table, images, first_model, batch)
            )

    def _embeddings(self, table: pa.Table, images: list, first_model: list, batch: int):
        """(bid, row, uid, embedding) in one space, the first export's, for every pair: the
        pairs the other export scored have their images embedded by the first one too."""
        missing = [row for row, vector in enumerate(first_model) if vector is None]
        if missing:
            vectors = image_embeddings(self.scorers, 0, [images[r] for r in missing], batch)
            for row, vector in zip(missing, vectors, strict=True):
                first_model[row] = vector
        return pa.table(
            {
                "bid": table.column("bid"),
                "row": table.column("row"),
                "uid": table.column("uid"),
                "embedding": pa.array([v.tolist() for v in first_model], pa.list_(pa.float32())),
            }
        )


def _histogram_of(scores: pa.Table) -> np.ndarray:
    return histogram(scores.column("score").to_numpy())


class SumHistograms(beam.CombineFn):
    """The job-wide histogram: a sum of the workers' fixed-bin histograms."""

    def create_accumulator(self):
        return np.zeros(HISTOGRAM_BINS, dtype=np.int64)

    def add_input(self, accumulator, counts):
        return accumulator + counts

    def merge_accumulators(self, accumulators):
        return sum(accumulators, self.create_accumulator())

    def extract_output(self, accumulator):
        return accumulator


def flags_of(scores: pa.Table, min_score: float, cut: float):
    """(bid, flag table) per batch of the flagged rows of a scores table."""
    flagged = {"bid": [], "rows": [], "reason": [], "measured": []}
    for bid, row, score in zip(*scores.to_pydict().values(), strict=True):
        verdict = check_score(score, min_score, cut)
        if verdict:
            flagged["bid"].append(bid)
            flagged["rows"].append([row])
            flagged["reason"].append(verdict[0])
            flagged["measured"].append(verdict[1])
    if not flagged["bid"]:
        return
    table = pa.table(flagged, schema=pa.schema([("bid", pa.string()), *FLAG_SCHEMA]))
    for bid, part in split_by_column(table, "bid"):
        yield bid, part.select(FLAG_SCHEMA.names).cast(FLAG_SCHEMA)


class FlagScores(beam.PTransform):
    """Tables of (bid, row, score) -> (batch_id, flag table): one keep-fraction cut for the
    whole job (a global combine of histograms, then a side input), and the min_score floor."""

    def __init__(self, min_score: float, keep_fraction: float):
        super().__init__()
        self.min_score = min_score
        self.keep_fraction = keep_fraction

    def expand(self, scores):
        cut = (
            scores
            | "Histogram" >> beam.Map(_histogram_of)
            | "JobHistogram" >> beam.CombineGlobally(SumHistograms())
            | "KeepFractionCut" >> beam.Map(keep_fraction_cut, self.keep_fraction)
        )
        return scores | "FlagLowScores" >> beam.FlatMap(
            flags_of, self.min_score, beam.pvalue.AsSingleton(cut)
        )


def bucketed(table: pa.Table, planes_holder: dict):
    """((table, bucket), (bid, row, uid, embedding)) for every pair and LSH table."""
    vectors = np.asarray(table.column("embedding").to_pylist(), np.float64)
    if "planes" not in planes_holder:
        planes_holder["planes"] = hyperplanes(vectors.shape[1])
    keys = lsh_keys(vectors, planes_holder["planes"])
    rows = zip(
        table.column("bid").to_pylist(), table.column("row").to_pylist(),
        table.column("uid").to_pylist(), vectors, keys, strict=True,
    )  # fmt: skip
    for bid, row, uid, vector, buckets in rows:
        for lsh_table, bucket in enumerate(buckets):
            yield (lsh_table, int(bucket)), (bid, row, uid, vector)


def duplicates_in_bucket(element, min_cosine: float):
    """((bid, row), (cosine, kept uid)) for each near-duplicate among a bucket's pairs."""
    _, members = element
    members = sorted(members, key=lambda member: member[2])
    if len(members) < 2:
        return
    uids = [member[2] for member in members]
    found = near_duplicates(uids, np.stack([member[3] for member in members]), min_cosine)
    for index, cosine, kept in found:
        yield (members[index][0], members[index][1]), (kept, cosine)


def duplicate_flags(element, min_cosine: float):
    """(bid, flag table) for a batch's near-duplicates (each row once, its smallest kept uid)."""
    bid, found = element
    rows, reasons, measured = [], [], []
    for row, (kept, cosine) in sorted(found):
        verdict = check_semantic_duplicate(cosine, kept, min_cosine)
        if verdict:
            rows.append([row])
            reasons.append(verdict[0])
            measured.append(verdict[1])
    if rows:
        yield bid, pa.table({"rows": rows, "reason": reasons, "measured": measured}, FLAG_SCHEMA)


class SemanticDedup(beam.PTransform):
    """Tables of (bid, row, uid, embedding) -> (batch_id, flag table) of the near-duplicates:
    bucketed by random-hyperplane LSH (several tables), compared within each bucket, the
    smallest kept uid per pair over all buckets."""

    def __init__(self, min_cosine: float):
        super().__init__()
        self.min_cosine = min_cosine

    def expand(self, embeddings):
        return (
            embeddings
            | "LshBuckets" >> beam.FlatMap(bucketed, {})
            | "GroupByBucket" >> beam.GroupByKey()
            | "CompareInBucket" >> beam.FlatMap(duplicates_in_bucket, self.min_cosine)
            | "SmallestKept" >> beam.CombinePerKey(min)
            | "ByBatch" >> beam.MapTuple(lambda where, kept: (where[0], (where[1], kept)))
            | "GroupByBatch" >> beam.GroupByKey()
            | "DuplicateFlags" >> beam.FlatMap(duplicate_flags, self.min_cosine)
        )


class ScoreRule(beam.PTransform):
    """Tables of PAIR_COLUMNS -> (batch_id, flag table) of the pairs the score rule fails, and
    with ``semantic_min_cosine`` those the semantic near-duplicate rule fails too."""

    def __init__(
        self,
        settings: ScoreSettings,
        min_score: float,
        keep_fraction: float,
        semantic_min_cosine: float | None = None,
    ):
        super().__init__()
        self.settings = settings
        self.min_score = min_score
        self.keep_fraction = keep_fraction
        self.semantic_min_cosine = semantic_min_cosine

    def expand(self, pairs):
        scored = pairs | "ScorePairs" >> beam.ParDo(ScorePairs(self.settings)).with_outputs(
            EMBEDDINGS, main="scores"
        )
        flags = scored.scores | "Flag" >> FlagScores(self.min_score, self.keep_fraction)
        if not self.settings.semantic_dedup:
            return flags
        duplicates = scored[EMBEDDINGS] | "SemanticDedup" >> SemanticDedup(self.semantic_min_cosine)
        return (flags, duplicates) | "ScoreFlags" >> beam.Flatten()
