"""Near-duplicates of evaluation images by banded perceptual hashes (pigeonhole matching).

Split the 64-bit pHash into d+1 bands: two hashes within Hamming distance d differ in at most
d bits, so at least one band holds none of them and agrees exactly. Joining candidates to
evaluation images on (band index, band value) therefore finds every match within d without
comparing all pairs; each band hit is then verified on the full distance. The Beam job joins
on these keys with CoGroupByKey; :class:`EvalIndex` is the same logic in memory, for tools
and tests.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from filters.phash import hamming

EVAL_DUPLICATE = "eval_near_duplicate"
HASH_BITS = 64


def eval_reason(set_name: str) -> str:
    """The reject reason names the evaluation set the image matched."""
    return f"{EVAL_DUPLICATE}/{set_name}"


def band_widths(max_distance: int) -> list[int]:
    """Widths of the d+1 bands covering 64 bits, as equal as possible (wider first)."""
    if not 0 <= max_distance < HASH_BITS:
        raise ValueError(f"eval Hamming distance must be in 0..63, got {max_distance}")
    count = max_distance + 1
    base, extra = divmod(HASH_BITS, count)
    return [base + 1 if index < extra else base for index in range(count)]


def bands(phash_hex: str, max_distance: int) -> list[tuple[int, int]]:
    """The (band index, band value) keys of a hash; two hashes within d share at least one."""
    value = int(phash_hex, 16)
    keys, shift = [], HASH_BITS
    for index, width in enumerate(band_widths(max_distance)):
        shift -= width
        keys.append((index, (value >> shift) & ((1 << width) - 1)))
    return keys


@dataclass(frozen=True, order=True)
class EvalMatch:
    """The closest evaluation image to a candidate; ordered so the best match is the min."""

    distance: int
    set_name: str
    image: str

    def measured(self) -> str:
        return f"eval_set={self.set_name},eval_image={self.image},distance={self.distance}"


def best_match(
    candidate: str, evals: Iterable[tuple[str, str, str]], max_distance: int
) -> EvalMatch | None:
    """Verifies band hits: the nearest (set, image, hash) within ``max_distance``, ties broken
    by set name then image name so the answer never depends on arrival order."""
    matches = [
        EvalMatch(distance, set_name, image)
        for set_name, image, eval_hash in evals
        if (distance := hamming(candidate, eval_hash)) <= max_distance
    ]
    return min(matches) if matches else None


class EvalIndex:
    """An in-memory banded index of evaluation hashes (the Beam job joins instead)."""

    def __init__(self, entries: Iterable[tuple[str, str, str]], max_distance: int):
        self.max_distance = max_distance
        self._buckets: dict[tuple[int, int], list[tuple[str, str, str]]] = defaultdict(list)
        for entry in entries:
            for key in bands(entry[2], max_distance):
                self._buckets[key].append(entry)

    def match(self, candidate: str) -> EvalMatch | None:
        hits = {
            entry for key in bands(candidate, self.max_distance) for entry in self._buckets[key]
        }
        return best_match(candidate, hits, self.max_distance)
