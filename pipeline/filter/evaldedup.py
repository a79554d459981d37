"""Near-duplicates of evaluation images: a banded pHash join that never holds candidates.

Evaluation images are listed and hashed inside the pipeline; both sides are split into
(band index, band value) keys, bucketed by key and joined with CoGroupByKey on the bucket.
The candidates (a row per band of every downloaded image) wait in scratch files and only
refs to them are shuffled; the eval side is small and travels as tuples. In a bucket, an
Arrow join finds the band hits, each is verified on the full Hamming distance, and the
nearest match of a candidate wins (filters.eval_index).
"""

from __future__ import annotations

import io
import re

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems
from PIL import Image

from filters.eval_index import EvalMatch, bands, best_match
from filters.phash import phash
from filters.rules.eval_dedup import check_eval_match
from pipeline.filter.counts import FLAG_SCHEMA
from pipeline.filter.measure import band_bucket
from pipeline.shards import read_parts

_WILDCARD = re.compile(r"[*?\[]")


def glob_root(pattern: str) -> str:
    """The folder before the first wildcard: eval image names are relative to it."""
    match = _WILDCARD.search(pattern)
    head = pattern[: match.start()] if match else pattern
    return head.rsplit("/", 1)[0] + "/" if "/" in head else ""


def list_images(pattern: str) -> list[str]:
    """Paths matching a glob, sorted (through FileSystems, so gs:// works)."""
    return sorted(m.path for result in FileSystems.match([pattern]) for m in result.metadata_list)


def hash_eval_image(set_name: str, root: str, path: str):
    """(set, image name, phash), or a tally when the file is not a decodable image."""
    name = path[len(root) :] if path.startswith(root) else path
    try:
        with FileSystems.open(path) as handle:
            image = Image.open(io.BytesIO(handle.read()))
            image.load()
        yield set_name, name, phash(image)
    except Exception:  # noqa: BLE001 - any undecodable file is skipped and counted
        yield beam.pvalue.TaggedOutput("tallies", {f"eval/{set_name}/undecodable": 1})


class EvalDedup(beam.PTransform):
    """Candidates ``(bucket, ref)`` (measure.py) -> flags ``(batch_id, table)`` for the
    rows that match an eval image."""

    def __init__(self, eval_sets: dict[str, str], max_distance: int, buckets: int):
        super().__init__()
        self.eval_sets = dict(sorted(eval_sets.items()))
        self.max_distance = max_distance
        self.buckets = buckets

    def expand(self, candidates):
        pipeline = candidates.pipeline
        hashed = (
            pipeline
            | "EvalSets" >> beam.Create(list(self.eval_sets.items()))
            | "ListImages"
            >> beam.FlatMapTuple(
                lambda name, pattern: [(name, glob_root(pattern), p) for p in list_images(pattern)]
            )
            | "SpreadImages" >> beam.Reshuffle()
            | "HashImages"
            >> beam.FlatMapTuple(hash_eval_image).with_outputs("tallies", main="hashes")
        )
        self.tallies = (
            hashed.hashes
            | "CountHashed" >> beam.MapTuple(lambda name, _, __: {f"eval/{name}/images": 1})
            | "WithUndecodable" >> _FlattenWith(hashed.tallies)
        )
        eval_bands = hashed.hashes | "EvalBands" >> beam.FlatMapTuple(
            lambda name, image, value: [
                (band_bucket(band, key, self.buckets), (band, key, name, image, value))
                for band, key in bands(value, self.max_distance)
            ]
        )
        return (
            {"eval": eval_bands, "candidates": candidates}
            | "JoinOnBands" >> beam.CoGroupByKey()
            | "Verify" >> beam.FlatMap(_verify_within, self.max_distance)
            | "NearestPerRow" >> beam.CombinePerKey(min)
            | "ToFlags" >> beam.MapTuple(_to_flag)
        )


_EVAL_SCHEMA = pa.schema(
    [
        ("band", pa.uint8()),
        ("value", pa.uint64()),
        ("set_name", pa.string()),
        ("image", pa.string()),
        ("eval_phash", pa.string()),
    ]
)


def _verify_within(element, max_distance: int):
    """((batch_id, row), nearest match among this bucket's band hits) per hit candidate."""
    _, grouped = element
    evals = list(grouped["eval"])
    refs = list(grouped["candidates"])
    if not evals or not refs:
        return
    eval_table = pa.table(list(zip(*evals, strict=True)), schema=_EVAL_SCHEMA)
    candidates = pa.concat_tables(read_parts(refs))
    hits = candidates.join(eval_table, ["band", "value"], join_type="inner").to_pydict()
    found: dict[tuple[str, int], list] = {}
    for bid, row, candidate, name, image, value in zip(
        hits["bid"], hits["row"], hits["phash"], hits["set_name"], hits["image"],
        hits["eval_phash"], strict=True,
    ):  # fmt: skip
        found.setdefault((bid, row), []).append((candidate, (name, image, value)))
    for key, pairs in sorted(found.items()):
        match = best_match(pairs[0][0], [eval_image for _, eval_image in pairs], max_distance)
        if match is not None:
            yield key, match


def _to_flag(row_key: tuple[str, int], match: EvalMatch):
    bid, row = row_key
    reason, measured = check_eval_match(match)
    flag = {"rows": [[row]], "reason": [reason], "measured": [measured]}
    return bid, pa.table(flag, schema=FLAG_SCHEMA)


class _FlattenWith(beam.PTransform):
    def __init__(self, other):
        super().__init__()
        self.other = other

    def expand(self, pcoll):
        return (pcoll, self.other) | beam.Flatten()
