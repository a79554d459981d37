"""Near-duplicates of evaluation images: a banded pHash join that never holds candidates.

Evaluation images are listed and hashed inside the pipeline; both sides are keyed by
(band index, band value) and joined with CoGroupByKey; every band hit is verified on the
full Hamming distance, and the nearest match of a candidate wins (filters.eval_index).
"""

from __future__ import annotations

import io
import re

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems
from PIL import Image

from filters.eval_index import EvalMatch, bands, best_match, eval_reason
from filters.phash import phash
from pipeline.filter_counts import FLAG_SCHEMA

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
    """Candidates ``((band, value), (phash, batch_id, row))`` -> flags for matching rows."""

    def __init__(self, eval_sets: dict[str, str], max_distance: int):
        super().__init__()
        self.eval_sets = dict(sorted(eval_sets.items()))
        self.max_distance = max_distance

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
                (key, (name, image, value)) for key in bands(value, self.max_distance)
            ]
        )
        return (
            {"eval": eval_bands, "candidates": candidates}
            | "JoinOnBands" >> beam.CoGroupByKey()
            | "Verify" >> beam.FlatMap(_verify_within, self.max_distance)
            | "NearestPerRow" >> beam.CombinePerKey(min)
            | "ToFlags" >> beam.MapTuple(_to_flag)
        )


def _verify_within(element, max_distance: int):
    _, grouped = element
    evals = list(grouped["eval"])
    if not evals:
        return
    for phash_hex, bid, row in grouped["candidates"]:
        match = best_match(phash_hex, evals, max_distance)
        if match is not None:
            yield (bid, row), match


def _to_flag(row_key: tuple[str, int], match: EvalMatch):
    bid, row = row_key
    flag = {
        "rows": [[row]],
        "reason": [eval_reason(match.set_name)],
        "measured": [match.measured()],
    }
    return bid, pa.table(flag, schema=FLAG_SCHEMA)


class _FlattenWith(beam.PTransform):
    def __init__(self, other):
        super().__init__()
        self.other = other

    def expand(self, pcoll):
        return (pcoll, self.other) | beam.Flatten()
