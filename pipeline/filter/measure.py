"""Per batch of records: an id, unigram counts, and the partial counts the frequency rules join.

Per batch and rule, one Arrow table holds a row per *distinct* key (token, alt-text, image
hash) with the batch id and the rows the key occurs in; it is split by a stable hash of the
key into buckets. Every key of a bucket meets its partials from all batches in one place (a
join keyed by the key, bucketed so the shuffle moves a few large elements, not one per key),
and verdicts route back to (batch, row).

Neither the batch nor its partials travel through the shuffle: each is written once to the
output's scratch folder (the partials as one file per batch and rule, a part per bucket),
and only paths and refs are shuffled. On the DirectRunner, which holds everything it
shuffles in memory, that keeps the job's peak memory flat as the input grows.
"""

from __future__ import annotations

import contextlib
import gc
import hashlib
import itertools
import zlib
from collections.abc import Iterator

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from apache_beam import pvalue
from apache_beam.io.filesystems import FileSystems

from filters.eval_index import bands
from filters.rule import (
    ALT_TEXT,
    DISTINCT_COUNT,
    DOWNLOADED_IMAGE,
    EVAL_JOIN,
    IMAGE,
    MODEL_SCORE,
    N_UNIGRAMS,
    NGRAM_RANK,
    PAIR_SCORE,
    Rule,
)
from filters.text import normalize, shuffle_key, tokenize
from pipeline.records import STATUS_OK
from pipeline.shards import split_by_index, write_parts, write_piece

ROUTE = "_route"  # "<batch id>/<row>": where an NSFW score goes back to
TALLIES = "tallies"
# The stages whose rules need inputs from every batch (tagged with the rule's name).
PARTIAL_STAGES = (DISTINCT_COUNT, NGRAM_RANK, EVAL_JOIN, MODEL_SCORE, PAIR_SCORE)
CANDIDATE_SCHEMA = pa.schema(
    [("band", pa.uint8()), ("value", pa.uint64()), ("phash", pa.string()), ("row", pa.uint32())]
)


def batch_id(table: pa.Table) -> str:
    """A batch's id: a digest of every column but the image bytes (the record's identity,
    page and source included, so two batches holding the same uids on other pages differ).
    It names the batch's scratch file and keys the join; it never reaches an output."""
    digest = hashlib.blake2b(digest_size=12)
    for name in table.column_names:
        if name == "image":
            continue
        digest.update(f"{name};".encode())
        for chunk in table.column(name).chunks:
            digest.update(f"{chunk.offset}:{len(chunk)};".encode())
            for buffer in chunk.buffers():
                if buffer is not None:
                    digest.update(buffer)
    return f"{digest.hexdigest()}-{table.num_rows}"


def compact(table: pa.Table, start: int, stop: int) -> pa.Table:
    """Rows [start, stop) in buffers of their own: a pickled slice would carry its parent's
    whole buffers through the shuffle."""
    if start == 0 and stop == table.num_rows:
        return table.combine_chunks()
    return table.take(pa.array(np.arange(start, stop, dtype=np.int64)))


def slices(table: pa.Table, rows: int) -> Iterator[pa.Table]:
    for start in range(0, table.num_rows, rows):
        yield compact(table, start, min(start + rows, table.num_rows))


@contextlib.contextmanager
def gc_paused():
    """Batches build millions of small acyclic objects; the cycle collector would rescan them
    over and over (measured ~2x slower). Reference counting still frees them."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def bucket_of(key: str, buckets: int) -> int:
    """The shuffle bucket of a key: a stable hash (crc32), the same on every worker."""
    return zlib.crc32(key.encode("utf-8", "surrogatepass")) % buckets


def bounded_keys(keys: pa.Array) -> pa.Array:
    """filters.text.shuffle_key over an array: long keys (rare) become digests, in Python
    only for those."""
    long = pc.greater(pc.utf8_length(keys), 64)
    if not pc.any(long).as_py():
        return keys
    digests = [shuffle_key(key) for key in pc.filter(keys, long).to_pylist()]
    return pc.replace_with_mask(keys, long, pa.array(digests, pa.string()))


def group_partial(
    keys: pa.Array, rows: np.ndarray, bid: str, ids: pa.Array | None = None, cap: int = 0
) -> pa.Table:
    """One row per distinct key of a batch: key, rows it occurs in (one entry per
    occurrence), count of occurrences, and for distinct-count rules up to ``cap`` distinct
    ids. Arrow's hash group-by does the per-occurrence work in C++.

    Any ``cap`` ids will do: the union over batches reaches ``cap`` exactly when the true
    number of distinct ids does, so the capped count is the same however records are batched.
    """
    columns = {"key": bounded_keys(keys), "r": pa.array(rows, pa.uint32())}
    aggregations = [("r", "list")]
    if ids is not None:
        columns["i"] = bounded_keys(ids)
        aggregations.append(("i", "distinct"))
    grouped = pa.table(columns).group_by("key", use_threads=False).aggregate(aggregations)
    rows_list = grouped.column("r_list")
    result = {
        "key": grouped.column("key"),
        "rows": rows_list,
        "count": pc.list_value_length(rows_list).cast(pa.int64()),
        "bid": pa.array([bid] * grouped.num_rows, pa.string()),
    }
    if ids is not None:
        result["ids"] = pc.list_slice(grouped.column("i_distinct"), 0, cap)
    return pa.table(result)


def band_bucket(band: int, value: int, buckets: int) -> int:
    """The shuffle bucket of a pHash band key, the same for candidates and eval images."""
    return bucket_of(f"{band}:{value}", buckets)


def split_by_bucket(partial: pa.Table, buckets: int) -> Iterator[tuple[int, pa.Table]]:
    """(bucket, sub-table) per bucket the keys fall into."""
    if partial.num_rows == 0:
        return
    keys = partial.column("key").to_pylist()
    index = np.fromiter((bucket_of(k, buckets) for k in keys), dtype=np.int64, count=len(keys))
    yield from split_by_index(partial, index)


def flat_ngrams(tokens: list[list[str]]) -> tuple[pa.Array, np.ndarray]:
    """All unigrams and bigrams of a batch with their row indices (bigrams built in Arrow,
    joined by one space exactly as filters.text.bigrams does)."""
    lengths = np.fromiter((len(t) for t in tokens), dtype=np.int64, count=len(tokens))
    unigram_rows = np.repeat(np.arange(len(tokens), dtype=np.uint32), lengths)
    flat = pa.array(list(itertools.chain.from_iterable(tokens)), pa.string())
    same_row = unigram_rows[:-1] == unigram_rows[1:]
    firsts = pc.filter(flat.slice(0, max(len(flat) - 1, 0)), pa.array(same_row))
    seconds = pc.filter(flat.slice(1), pa.array(same_row))
    bigram_array = pc.binary_join_element_wise(firsts, seconds, " ")
    keys = pa.concat_arrays([flat, bigram_array.cast(pa.string())])
    rows = np.concatenate([unigram_rows, unigram_rows[:-1][same_row]])
    return keys, rows


def partial_tags(rules: list[Rule]) -> list[str]:
    """The tagged outputs MeasureBatch gives for these rules: one per rule that joins."""
    return [rule.name for rule in rules if rule.stage in PARTIAL_STAGES]


def reads_text(rule: Rule) -> bool:
    """Whether a rule needs the normalised alt-text or its unigrams."""
    return N_UNIGRAMS in rule.inputs or rule.stage == NGRAM_RANK or ALT_TEXT in (rule.counts or ())


class MeasureBatch(beam.DoFn):
    """Splits input tables into batches, adds the unigram count, emits partials per rule.

    The main output is ``(batch_id, path)``: the batch, written under ``scratch``; each rule
    of a PARTIAL_STAGE gets a tagged output named after it.
    """

    def __init__(self, rules: list[Rule], config, batch_rows: int, buckets: int, scratch: str):
        self.rules = rules
        self.config = config
        self.batch_rows = batch_rows
        self.buckets = buckets
        self.scratch = scratch
        self.text = any(reads_text(rule) for rule in rules)

    def process(self, table: pa.Table):
        for part in slices(table, self.batch_rows):
            with gc_paused():
                outputs = list(self._batch(part))
            yield from outputs

    def _batch(self, table: pa.Table):
        bid = batch_id(table)
        yield pvalue.TaggedOutput(TALLIES, {"in": table.num_rows})
        if not self.text:
            yield bid, self._store(bid, table)
            return
        alts = [alt or "" for alt in table.column("alt").to_pylist()]
        normalized = [normalize(alt) for alt in alts]
        tokens = [tokenize(text) for text in normalized]
        counts = pa.array([len(t) for t in tokens], pa.int32())
        yield bid, self._store(bid, table.append_column(N_UNIGRAMS, counts))
        ok = self._ok_rows(table)
        for rule in self.rules:
            if rule.stage == DISTINCT_COUNT:
                yield from self._distinct(rule, bid, table, normalized, ok)
            elif rule.stage == NGRAM_RANK:
                yield from self._ngrams(rule, bid, tokens)
            elif rule.stage == EVAL_JOIN:
                yield from self._eval_candidates(rule, bid, table, ok)
            elif rule.stage == MODEL_SCORE:
                yield from self._images_to_score(rule, bid, table, ok)
            elif rule.stage == PAIR_SCORE:
                yield from self._pairs_to_score(rule, bid, table, ok)

    def _store(self, bid: str, table: pa.Table) -> str:
        """Writes the batch for ApplyRules; a retried bundle rewrites the same bytes."""
        path = FileSystems.join(self.scratch, f"{bid}.arrow")
        write_piece(table, path)
        return path

    def _ok_rows(self, table: pa.Table) -> list[bool]:
        if "status" not in table.column_names:
            return [False] * table.num_rows
        return [status == STATUS_OK for status in table.column("status").to_pylist()]

    def _emit(self, tag: str, bid: str, partial: pa.Table):
        """One scratch file per batch and rule, a part per bucket; the shuffle moves refs."""
        path = FileSystems.join(self.scratch, f"{bid}-{tag}.arrow")
        for bucket, ref in write_parts(split_by_bucket(partial, self.buckets), path):
            yield pvalue.TaggedOutput(tag, (bucket, ref))

    def _ngrams(self, rule: Rule, bid: str, tokens: list[list[str]]):
        keys, rows = flat_ngrams(tokens)
        yield from self._emit(rule.name, bid, group_partial(keys, rows, bid))

    def _identities(self, what: str, table: pa.Table, normalized: list[str], ok: list[bool]):
        """Per row, what a distinct-count rule keys or counts (filters/rule.py), None to skip:
        an image is its content hash when downloaded, so one picture at many URLs counts once."""
        if what == ALT_TEXT:
            return normalized
        names = table.column_names
        hashes = table.column("sha256").to_pylist() if "sha256" in names else None
        downloaded = [hashes[row] if hashes and ok[row] and hashes[row] else None for row in
                      range(table.num_rows)]  # fmt: skip
        if what == DOWNLOADED_IMAGE:
            return downloaded
        if what == IMAGE:
            urls = table.column("url").to_pylist()
            return [
                held or "url:" + (url or "") for held, url in zip(downloaded, urls, strict=True)
            ]
        raise ValueError(f"unknown identity {what!r}")

    def _distinct(self, rule: Rule, bid: str, table, normalized: list[str], ok: list[bool]):
        """DISTINCT_COUNT: key -> the distinct ids it occurs with, capped just over the limit."""
        key_of, id_of = (self._identities(what, table, normalized, ok) for what in rule.counts)
        chosen = [
            row
            for row in range(table.num_rows)
            if key_of[row] is not None and id_of[row] is not None
        ]
        if not chosen:
            return
        keys = pa.array([key_of[row] for row in chosen], pa.string())
        ids = pa.array([id_of[row] for row in chosen], pa.string())
        rows = np.array(chosen, dtype=np.uint32)
        cap = getattr(self.config, rule.config_keys[0]) + 1
        yield from self._emit(rule.name, bid, group_partial(keys, rows, bid, ids, cap))

    def _eval_candidates(self, rule: Rule, bid: str, table: pa.Table, ok: list[bool]):
        """A row per pHash band of each image, bucketed by band key like the eval images'."""
        max_distance = getattr(self.config, rule.config_keys[0])
        columns = {"band": [], "value": [], "phash": [], "row": [], "bucket": []}
        for row, phash in enumerate(table.column("phash").to_pylist()):
            if ok[row] and phash:
                for band, value in bands(phash, max_distance):
                    columns["band"].append(band)
                    columns["value"].append(value)
                    columns["phash"].append(phash)
                    columns["row"].append(row)
                    columns["bucket"].append(band_bucket(band, value, self.buckets))
        buckets = np.array(columns.pop("bucket"), dtype=np.int64)
        candidates = pa.table(columns, schema=CANDIDATE_SCHEMA).append_column(
            "bid", pa.array([bid] * len(buckets), pa.string())
        )
        path = FileSystems.join(self.scratch, f"{bid}-{rule.name}.arrow")
        for bucket, ref in write_parts(split_by_index(candidates, buckets), path):
            yield pvalue.TaggedOutput(rule.name, (bucket, ref))

    def _images_to_score(self, rule: Rule, bid: str, table: pa.Table, ok: list[bool]):
        """MODEL_SCORE: the images to score, each keyed by its route back to (batch, row)."""
        rows = [row for row, good in enumerate(ok) if good]
        if not rows:
            return
        images = table.take(pa.array(rows, pa.int64())).select(["image"])
        routes = pa.array([f"{bid}/{row}" for row in rows], pa.string())
        yield pvalue.TaggedOutput(rule.name, images.append_column(ROUTE, routes))

    def _pairs_to_score(self, rule: Rule, bid: str, table: pa.Table, ok: list[bool]):
        """PAIR_SCORE: the downloaded pairs' uid, image bytes and alt-text, with (bid, row)."""
        rows = [row for row, good in enumerate(ok) if good]
        if not rows:
            return
        pairs = table.take(pa.array(rows, pa.int64())).select(["uid", "image", "alt"])
        yield pvalue.TaggedOutput(
            rule.name,
            pairs.append_column("bid", pa.array([bid] * len(rows), pa.string())).append_column(
                "row", pa.array(rows, pa.uint32())
            ),
        )
