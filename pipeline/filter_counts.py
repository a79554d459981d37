"""The frequency rules as distributed counts and joins, never a dict of all keys on one worker.

Inputs are per-batch partials ``(key, (..., batch_id, packed rows))``; a GroupByKey brings a
key's partials together, the total decides the rule, and a failing key sends a flag
``(batch_id, (packed rows, reason, measured))`` back towards its batch.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable

import apache_beam as beam

from filters.text import RARE_TOKEN, Verdict, rare_cut_count

Flag = tuple[str, tuple[bytes, str, str]]


class DistinctCountRule(beam.PTransform):
    """key -> number of distinct ids (capped at limit + 1); over the limit, flag every row.

    Partials are ``(key, (sorted ids, batch_id, rows))``; the union is capped just above
    the limit, so memory per key stays bounded however common the key is.
    """

    def __init__(self, limit: int, check: Callable[[int, int], Verdict]):
        super().__init__()
        self.limit = limit
        self.check = check

    def expand(self, partials):
        return (
            partials
            | "GroupByKey" >> beam.GroupByKey()
            | "FlagOverLimit" >> beam.FlatMapTuple(self._flags)
        )

    def _flags(self, key: str, partials: Iterable) -> Iterable[Flag]:
        cap = self.limit + 1
        distinct: set[str] = set()
        for ids, _, _ in partials:
            for identity in ids:
                if len(distinct) >= cap:
                    break
                distinct.add(identity)
        verdict = self.check(len(distinct), self.limit)
        if verdict is None:
            return
        reason, measured = verdict
        for _, bid, rows in partials:
            yield bid, (rows, reason, measured)


def _histogram_to_cut(histogram: dict[int, int], vocab_size: int, min_count: int) -> int:
    return rare_cut_count(histogram, vocab_size, min_count)


class MergeHistograms(beam.CombineFn):
    """{count: number of tokens}: small at any scale (as many keys as distinct counts)."""

    def create_accumulator(self) -> Counter:
        return Counter()

    def add_input(self, accumulator: Counter, count: int) -> Counter:
        accumulator[count] += 1
        return accumulator

    def merge_accumulators(self, accumulators: Iterable[Counter]) -> Counter:
        merged = Counter()
        for accumulator in accumulators:
            merged.update(accumulator)
        return merged

    def extract_output(self, accumulator: Counter) -> dict[int, int]:
        return dict(accumulator)


class RareTokens(beam.PTransform):
    """Flags rows holding a unigram or bigram outside the ``vocab_size`` most frequent.

    The rank cut is a count: the histogram of token totals gives the count of the V-th most
    frequent token (ties kept, see filters.text.rare_cut_count), passed as a singleton side
    input, which is one integer at any scale.
    """

    def __init__(self, vocab_size: int, min_count: int):
        super().__init__()
        self.vocab_size = vocab_size
        self.min_count = min_count

    def expand(self, partials):
        totals = (
            partials | "GroupByToken" >> beam.GroupByKey()
        )  # grouped values are re-iterable: one pass sums, a second routes flags
        cut = (
            totals
            | "Counts" >> beam.MapTuple(lambda _, parts: sum(part[0] for part in parts))
            | "Histogram" >> beam.CombineGlobally(MergeHistograms())
            | "CutCount" >> beam.Map(_histogram_to_cut, self.vocab_size, self.min_count)
        )
        return totals | "FlagRare" >> beam.FlatMap(self._flags, beam.pvalue.AsSingleton(cut))

    @staticmethod
    def _flags(grouped: tuple[str, Iterable], cut: int) -> Iterable[Flag]:
        token, parts = grouped
        total = sum(part[0] for part in parts)
        if total >= cut:
            return
        for _, bid, rows in parts:
            yield bid, (rows, RARE_TOKEN, f"{token}:{total}")
