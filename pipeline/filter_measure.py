"""Per batch of records: an id, unigram counts, and the partial counts the frequency rules join.

Each batch emits one (key, partial) per *distinct* key it holds, with the batch id and the
rows the key occurs in, so the shuffle carries about distinct-keys-per-batch elements rather
than one per token occurrence, and the verdicts can later be routed back to (batch, row).
"""

from __future__ import annotations

import hashlib
from array import array
from collections.abc import Iterator

import apache_beam as beam
import pyarrow as pa
from apache_beam import pvalue

from filters.eval_index import bands
from filters.text import ngrams, normalize, shuffle_key, unigrams
from pipeline.records import STATUS_OK

TOKENS = "tokens"
ALT_IMAGES = "alt_images"
IMAGE_ALTS = "image_alts"
EVAL_CANDIDATES = "eval_candidates"
NSFW_IMAGES = "nsfw_images"
NSFW_ROWS = "nsfw_rows"
TALLIES = "tallies"
N_UNIGRAMS = "_n_unigrams"


def pack_rows(rows: list[int]) -> bytes:
    """Row indices as compact bytes (shuffled once per key and batch)."""
    return array("I", rows).tobytes()


def unpack_rows(packed: bytes) -> array:
    rows = array("I")
    rows.frombytes(packed)
    return rows


def batch_id(table: pa.Table) -> str:
    """Content id of a batch: identical batches (duplicated input) get identical verdicts."""
    digest = hashlib.blake2b(digest_size=12)
    for uid in table.column("uid").to_pylist():
        digest.update((uid or "").encode())
        digest.update(b"\n")
    return f"{digest.hexdigest()}-{table.num_rows}"


def short_id(text: str) -> str:
    """64 bits of an identity (URL or alt-text): enough to count up to a threshold apart."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()


def slices(table: pa.Table, rows: int) -> Iterator[pa.Table]:
    for start in range(0, max(table.num_rows, 1), rows):
        part = table.slice(start, rows)
        if part.num_rows:
            yield part.combine_chunks()


class _Partial:
    """Distinct ids (capped) and rows of one key within a batch."""

    __slots__ = ("ids", "rows")

    def __init__(self) -> None:
        self.ids: set[str] = set()
        self.rows: list[int] = []

    def add(self, identity: str, row: int, cap: int) -> None:
        if len(self.ids) < cap:
            self.ids.add(identity)
        self.rows.append(row)


class MeasureBatch(beam.DoFn):
    """Splits input tables into batches, adds the unigram count, emits partials per rule."""

    def __init__(self, mode: str, config, batch_rows: int, eval_enabled: bool, nsfw: bool):
        self.mode = mode
        self.config = config
        self.batch_rows = batch_rows
        self.eval_enabled = eval_enabled and mode == "all"
        self.nsfw = nsfw and mode == "all"

    def process(self, table: pa.Table):
        for part in slices(table, self.batch_rows):
            yield from self._batch(part)

    def _batch(self, table: pa.Table):
        bid = batch_id(table)
        alts = [alt or "" for alt in table.column("alt").to_pylist()]
        yield pvalue.TaggedOutput(TALLIES, {"in": table.num_rows})
        if self.mode == "none":
            yield bid, table
            return
        tokens = [unigrams(alt) for alt in alts]
        counts = pa.array([len(t) for t in tokens], pa.int32())
        yield bid, table.append_column(N_UNIGRAMS, counts)
        yield from self._token_partials(bid, tokens)
        ok = self._ok_rows(table)
        yield from self._alt_images(bid, table, alts, ok)
        if self.mode == "all":
            yield from self._image_alts(bid, table, alts, ok)
            yield from self._eval_candidates(bid, table, ok)
            if self.nsfw:
                yield from self._nsfw(bid, table, ok)

    def _ok_rows(self, table: pa.Table) -> list[bool]:
        if "status" not in table.column_names:
            return [False] * table.num_rows
        return [status == STATUS_OK for status in table.column("status").to_pylist()]

    def _token_partials(self, bid: str, tokens: list[list[str]]):
        partials: dict[str, list] = {}
        for row, row_tokens in enumerate(tokens):
            for token in ngrams(row_tokens):
                entry = partials.get(token)
                if entry is None:
                    partials[token] = entry = [0, []]
                entry[0] += 1
                if not entry[1] or entry[1][-1] != row:
                    entry[1].append(row)
        for token, (count, rows) in partials.items():
            yield pvalue.TaggedOutput(TOKENS, (shuffle_key(token), (count, bid, pack_rows(rows))))

    def _alt_images(self, bid: str, table: pa.Table, alts: list[str], ok: list[bool]):
        """alt-text -> distinct images; an image is its content hash when downloaded."""
        urls = table.column("url").to_pylist()
        hashes = table.column("sha256").to_pylist() if "sha256" in table.column_names else None
        cap = self.config.max_images_per_alt + 1
        partials: dict[str, _Partial] = {}
        for row, alt in enumerate(alts):
            image = (
                hashes[row] if hashes and ok[row] and hashes[row] else "url:" + (urls[row] or "")
            )
            key = shuffle_key(normalize(alt))
            partials.setdefault(key, _Partial()).add(short_id(image), row, cap)
        for key, partial in partials.items():
            value = (sorted(partial.ids), bid, pack_rows(partial.rows))
            yield pvalue.TaggedOutput(ALT_IMAGES, (key, value))

    def _image_alts(self, bid: str, table: pa.Table, alts: list[str], ok: list[bool]):
        """content hash -> distinct alt-texts, so one picture at many URLs counts once."""
        hashes = table.column("sha256").to_pylist()
        cap = self.config.max_alts_per_image + 1
        partials: dict[str, _Partial] = {}
        for row, alt in enumerate(alts):
            if ok[row] and hashes[row]:
                partial = partials.setdefault(hashes[row], _Partial())
                partial.add(short_id(normalize(alt)), row, cap)
        for key, partial in partials.items():
            value = (sorted(partial.ids), bid, pack_rows(partial.rows))
            yield pvalue.TaggedOutput(IMAGE_ALTS, (key, value))

    def _eval_candidates(self, bid: str, table: pa.Table, ok: list[bool]):
        if not self.eval_enabled:
            return
        hashes = table.column("phash").to_pylist()
        for row, phash in enumerate(hashes):
            if ok[row] and phash:
                for key in bands(phash, self.config.eval_max_hamming):
                    yield pvalue.TaggedOutput(EVAL_CANDIDATES, (key, (phash, bid, row)))

    def _nsfw(self, bid: str, table: pa.Table, ok: list[bool]):
        rows = [row for row, good in enumerate(ok) if good]
        if not rows:
            return
        images = table.take(pa.array(rows, pa.int64())).select(["uid", "image"])
        yield pvalue.TaggedOutput(NSFW_IMAGES, images)
        for row, uid in zip(rows, images.column("uid").to_pylist(), strict=True):
            yield pvalue.TaggedOutput(NSFW_ROWS, (uid, (bid, row)))
