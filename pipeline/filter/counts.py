"""The frequency rules as distributed counts and joins, never a dict of all keys on one worker.

Inputs are ``(bucket, ref)`` from measure.py, a ref naming a partial table in a scratch
file: rows of (key, rows, count, bid [, ids]). A GroupByKey on the bucket brings every partial
of a key together (a bucket holds 1/N of the keys); Arrow group-bys total them; a failing key
sends a flag table of (rows, reason, measured) back towards each batch it occurs in, also
through a scratch file: the output is ``(batch_id, ref)``.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Iterator

import apache_beam as beam
import pyarrow as pa
import pyarrow.compute as pc
from apache_beam.io.filesystems import FileSystems

from filters.rule import Verdict
from filters.rules.rare_tokens import RARE_TOKEN, rare_cut_count
from pipeline.shards import read_parts, split_by_column, write_parts
from pipeline.stats import SumTallies

FLAG_SCHEMA = pa.schema(
    [("rows", pa.list_(pa.uint32())), ("reason", pa.string()), ("measured", pa.string())]
)


def flags_by_batch(flagged: pa.Table) -> Iterator[tuple[str, pa.Table]]:
    """(bid, flag table) per batch in ``flagged`` (columns bid, rows, reason, measured)."""
    for bid, part in split_by_column(flagged.select(["bid", *FLAG_SCHEMA.names]), "bid"):
        yield bid, part.cast(FLAG_SCHEMA)


def _concat(refs: Iterable[tuple[str, int]]) -> pa.Table:
    return pa.concat_tables(read_parts(refs))


def spill_flags(flagged: pa.Table, scratch: str) -> list[tuple[str, tuple[str, int]]]:
    """``(batch_id, ref)`` per batch in ``flagged``, the flag tables in one scratch file (a
    name of its own per call, so a retried step never rewrites a file a ref points into)."""
    path = FileSystems.join(scratch, f"flags-{uuid.uuid4().hex}.arrow")
    return write_parts(flags_by_batch(flagged), path)


class DistinctCountRule(beam.PTransform):
    """key -> number of distinct ids (capped at limit + 1); over the limit, flag every row."""

    def __init__(self, limit: int, check: Callable[[int, int], Verdict], scratch: str):
        super().__init__()
        self.limit = limit
        self.check = check
        self.scratch = scratch

    def expand(self, partials):
        return (
            partials
            | "GroupByBucket" >> beam.GroupByKey()
            | "FlagOverLimit" >> beam.FlatMapTuple(self._flags)
        )

    def _flags(self, bucket: int, refs: Iterable[tuple[str, int]]):
        partial = _concat(refs)
        ids = partial.column("ids")
        pairs = pa.table(
            {
                "key": partial.column("key").take(pc.list_parent_indices(ids)),
                "id": pc.list_flatten(ids),
            }
        )
        counts = pairs.group_by("key").aggregate([("id", "count_distinct")])
        over = counts.filter(pc.greater(counts.column("id_count_distinct"), self.limit))
        if over.num_rows == 0:
            return
        measured = {}
        for key, count in zip(*over.to_pydict().values(), strict=True):
            verdict = self.check(min(count, self.limit + 1), self.limit)
            if verdict:
                measured[key] = verdict
        if not measured:
            return
        keys = pa.array(list(measured), pa.string())
        flagged = partial.filter(pc.is_in(partial.column("key"), value_set=keys))
        verdicts = [measured[key] for key in flagged.column("key").to_pylist()]
        flagged = flagged.append_column(
            "reason", pa.array([v[0] for v in verdicts], pa.string())
        ).append_column("measured", pa.array([v[1] for v in verdicts], pa.string()))
        yield from spill_flags(flagged, self.scratch)


def _totals(refs: Iterable[tuple[str, int]]) -> tuple[pa.Table, pa.Table]:
    partial = _concat(refs)
    return partial, partial.group_by("key").aggregate([("count", "sum")])


def _histogram(element) -> dict[int, int]:
    _, totals = _totals(element[1])
    counts = pc.value_counts(totals.column("count_sum"))
    return dict(
        zip(*(counts.field(name).to_pylist() for name in ("values", "counts")), strict=True)
    )


def _rare_flags(element, cut: int, scratch: str):
    partial, totals = _totals(element[1])
    rare = totals.filter(pc.less(totals.column("count_sum"), cut))
    if rare.num_rows == 0:
        return
    index = pa.table({"key": partial.column("key"), "_row": pa.array(range(partial.num_rows))})
    matched = index.join(rare, "key", join_type="inner").sort_by("_row")
    flagged = partial.take(matched.column("_row"))
    measured = pc.binary_join_element_wise(
        flagged.column("key"), pc.cast(matched.column("count_sum"), pa.string()), ":"
    )
    reason = pa.array([RARE_TOKEN] * flagged.num_rows, pa.string())
    flagged = flagged.append_column("reason", reason).append_column("measured", measured)
    yield from spill_flags(flagged, scratch)


class RareTokens(beam.PTransform):
    """Flags rows holding a unigram or bigram outside the ``vocab_size`` most frequent.

    The rank cut is a count: the histogram of token totals gives the count of the V-th most
    frequent token (ties kept, see filters/rules/rare_tokens.py: rare_cut_count), passed as a
    singleton side input, which is one integer at any scale.
    """

    def __init__(self, vocab_size: int, min_count: int, scratch: str):
        super().__init__()
        self.vocab_size = vocab_size
        self.min_count = min_count
        self.scratch = scratch

    def expand(self, partials):
        grouped = partials | "GroupByBucket" >> beam.GroupByKey()
        cut = (
            grouped
            | "BucketHistograms" >> beam.Map(_histogram)
            | "Histogram" >> beam.CombineGlobally(SumTallies())
            | "CutCount" >> beam.Map(rare_cut_count, self.vocab_size, self.min_count)
        )
        return grouped | "FlagRare" >> beam.FlatMap(
            _rare_flags, beam.pvalue.AsSingleton(cut), self.scratch
        )
