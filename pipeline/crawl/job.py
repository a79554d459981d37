"""align-crawl: WARC/ARC/WAT files or page URLs -> deduplicated (image URL, alt) pairs.

Accounting (``stats.json``): ``in`` counts records, the unit a crawl reads: every WARC, ARC or
WAT record, every damaged part of a file (a truncated or corrupt gzip member, a malformed
record), or every listed page URL. A record is ``kept`` when it yields at least one pair and
otherwise rejected under one reason (``not_response_record``, ``not_html``,
``no_image_pairs``, ``truncated_gzip_member``, ``fetch_http_404``, ...); a page its owner
reserved (pipeline/fetch/consent.py) under its signal (``x_robots_tag``, ``meta_robots``,
``tdm_reservation``, ``tdm_reservation_meta``), its pairs counted in ``pairs/withheld/<signal>``;
one whose every pair ``--opt-out`` lists under ``opt_out_<kind>``. Pair-level counts
sit in ``counts``: ``pairs/extracted`` = ``pairs/duplicates`` + ``pairs/written``, and each
``<img>`` seen ends in ``img/pair`` or ``img/<why not>``; ``warc/<type>`` (``arc/<type>``) counts
records by type, ``warc/damaged`` damaged parts, ``warc/salvaged`` the damaged parts kept for
the pairs of a page cut short, ``payload/*`` the tolerated encoding quirks (pipeline.crawl.payload).

Deduplication is distributed: pairs are keyed by a bucket of their uid (a hash, so buckets are
even), each bucket is grouped and sorted with Arrow, and the survivor of a uid is the row with
the smallest (page_url, source), so it does not depend on bundling or worker count. A bucket
holds 1/``--key-buckets`` of the pairs (by default sized by the input, at most 256: raise it
with the crawl's size). The pairs do not travel through the shuffle: each harvested table is
written once to ``OUTPUT/_scratch/``, a part per bucket, and only (file, part) refs are grouped
(removed when the job ends).
"""

from __future__ import annotations

import argparse
import math
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator

import apache_beam as beam
import numpy as np
import pyarrow as pa
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from commandline.flags import UsageError
from pipeline.crawl.harvest import (
    HarvestOptions,
    Outcome,
    from_damage,
    from_response,
    from_warc_record,
    from_wat_record,
    rejected,
    screen,
)
from pipeline.fetch.consent import X_ROBOTS_TAG
from pipeline.fetch.fetcher import FetchConfig, Fetcher, FetchResult
from pipeline.fetch.settings import fetch_config
from pipeline.fetch.units import batches_by_unit, unit_function
from pipeline.monitor import LiveTally, Meter, run_job, summary
from pipeline.options import MAX_DEDUP_BUCKETS, MIN_DEDUP_BUCKETS, MIN_SHARDS
from pipeline.optout import read_list
from pipeline.pairs import keep_first_per_uid
from pipeline.records import CRAWL_PAIR_SCHEMA, check_crawl_inputs, make_uid
from pipeline.shards import (
    WriteShards,
    open_raw,
    read_parts,
    read_text,
    remove_folder,
    sized_inputs,
    split_by_index,
    write_parts,
)
from pipeline.stats import IN, KEPT, WriteStats, read_stats
from pipeline.stats import rejected as rejected_key
from pipeline.warc.reader import Damage, iter_records

JOB = "align-crawl"  # the command, and the namespace of the job's Beam counters
TALLIES = "tallies"
BATCH_PAIRS = 20_000  # pairs per emitted Arrow table


class PairBatcher:
    """Collects a worker's pairs, dropping duplicates it already holds, into Arrow tables."""

    def __init__(self):
        self.best: dict[str, tuple[str, str, str, str, str | None]] = {}
        self.duplicates = 0

    def add(self, outcome: Outcome) -> None:
        for url, alt in outcome.pairs:
            uid = make_uid(url, alt)
            row = (outcome.page_url, outcome.source, url, alt, outcome.page_date)
            held = self.best.get(uid)
            if held is None:
                self.best[uid] = row
                continue
            self.duplicates += 1
            if row[:4] < held[:4]:
                self.best[uid] = row

    def __len__(self) -> int:
        return len(self.best)

    def flush(self) -> pa.Table:
        uids = list(self.best)
        rows = [self.best[uid] for uid in uids]
        self.best = {}
        columns = {"uid": uids}
        for index, name in enumerate(("page_url", "source", "url", "alt", "page_date")):
            columns[name] = [row[index] for row in rows]
        columns["page_date"] = pa.array(columns["page_date"], pa.string())
        return pa.table(columns).select(CRAWL_PAIR_SCHEMA.names).cast(CRAWL_PAIR_SCHEMA)


def tally_of(outcome: Outcome) -> Counter:
    """An outcome's contribution to stats.json: one record in, kept or rejected by name."""
    return add_to_tally(Counter(), outcome)


def add_to_tally(tally: Counter, outcome: Outcome) -> Counter:
    """Adds an outcome's contribution to a running tally (no Counter per record: hot loop)."""
    tally.update(outcome.counts)
    tally[IN] += 1
    tally[KEPT if outcome.reason is None else rejected_key(outcome.reason)] += 1
    tally["pairs/extracted"] += len(outcome.pairs)
    return tally


class _Harvest(beam.DoFn):
    """Base of the extracting DoFns: outcomes in, pair tables and one tally per input out."""

    def __init__(self, options: HarvestOptions):
        self.options = options
        self.live = LiveTally(JOB)

    def emit(self, outcomes: Iterable[Outcome], extra: Counter | None = None) -> Iterator:
        """The pairs of ``outcomes``, then their tally (plus ``extra``, read once they are
        consumed); each outcome is counted in the job's counters as it comes."""
        batcher, tally = PairBatcher(), Counter()
        for outcome in outcomes:
            outcome = screen(outcome, self.options.opt_out)
            add_to_tally(tally, outcome)
            add_to_tally(self.live.pending, outcome)  # the live counters, flushed ~1/s
            self.live.tick()
            batcher.add(outcome)
            if len(batcher) >= BATCH_PAIRS:
                yield batcher.flush()
        if len(batcher):
            yield batcher.flush()
        closing = Counter(extra or {})
        closing["pairs/duplicates"] += batcher.duplicates
        tally.update(closing)
        self.live.add(closing)
        self.live.flush()
        yield beam.pvalue.TaggedOutput(TALLIES, dict(tally))


class HarvestFile(_Harvest):
    """Reads one WARC, ARC or WAT file and extracts every record's pairs."""

    def __init__(self, file_format: str, options: HarvestOptions):
        super().__init__(options)
        self.file_format = file_format

    def process(self, path: str) -> Iterator:
        files = Counter({FILES_READ: 1})
        yield from self.emit(self.outcomes(path, files), files)

    def outcomes(self, path: str, files: Counter | None = None) -> Iterator[Outcome]:
        """Every record of the file as an outcome. ``files`` learns, once the file is read,
        whether it held no record at all (``files/empty``: no bytes; ``files/without_records``:
        bytes, but not one WARC/WAT record); the input's bytes count as read as they go."""
        extract = from_wat_record if file_format_of(path, self.file_format) == "wat" else None
        extract = extract or from_warc_record
        files = Counter() if files is None else files
        try:
            stream = FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)
        except OSError:  # gone or unreadable since it was matched: the whole file is one reject
            files[FILES_WITHOUT_RECORDS] += 1
            yield rejected(path, "unreadable_file")
            return
        records, position = 0, 0
        with stream:
            for item in iter_records(stream):
                self.live.add({INPUT_BYTES: max(item.offset - position, 0)})
                position = max(position, item.offset)
                if isinstance(item, Damage):
                    outcome = from_damage(item, path, extract, self.options)
                    outcome.counts["warc/damaged"] += 1
                    records += outcome.reason is None  # a page salvaged from a clipped member
                else:
                    records += 1
                    outcome = extract(item, path, self.options)
                    outcome.counts[f"{item.format}/{item.type or 'untyped'}"] += 1
                yield outcome
            size = _size_of(stream, position)
        self.live.add({INPUT_BYTES: max(size - position, 0)})
        if not records:
            files[FILES_EMPTY if size == 0 else FILES_WITHOUT_RECORDS] += 1


def _size_of(stream, position: int) -> int:
    """The file's size (the reader may stop before its end, after damage)."""
    try:
        stream.seek(0, 2)
        return stream.tell()
    except (OSError, ValueError):
        return position


class FetchPages(_Harvest):
    """Fetches a batch of page URLs with the project's safe fetcher and extracts their pairs."""

    def __init__(self, options: HarvestOptions, fetch_config, politeness_unit: str = "host"):
        super().__init__(options)
        self.fetch_config = fetch_config
        self.politeness_unit = politeness_unit
        self.fetcher = None

    def setup(self) -> None:
        self.fetcher = Fetcher(self.fetch_config)

    def teardown(self) -> None:
        if self.fetcher is not None:
            self.fetcher.close()

    def process(self, urls: list[str]) -> Iterator:
        """A batch owns its hosts for the whole job (batches_by_unit), so it brings its own
        gates and robots.txt cache: the per-host caps are the job's, not the worker's."""
        unit_of = unit_function(self.politeness_unit)
        politeness = self.fetcher.politeness(unit_of)
        results = list(self.fetcher.map(list(urls), politeness=politeness))
        self.fetcher.release({unit_of(url) for url in urls} - {None}, unit_of)
        yield from self.emit(self.outcome(result) for result in results)

    def outcome(self, result: FetchResult) -> Outcome:
        source, page_url = f"fetch:{result.url}", result.final_url or result.url
        if result.status == X_ROBOTS_TAG:
            # Refused by the fetcher before its body was read (every header line is read
            # there): the same reason as a stored page's header, its pairs never known.
            return rejected(source, X_ROBOTS_TAG, page_url, Counter({"pages/withheld_unread": 1}))
        if result.status != "ok":
            return rejected(source, f"fetch_{result.status}", page_url)
        # Fetched undecoded (see page_fetch_config), so the body meets the WARC path's decoder; the
        # transfer coding is already undone by the HTTP client, so its header is dropped.
        headers = {k: v for k, v in (result.headers or {}).items() if k != "transfer-encoding"}
        return from_response(source, page_url, headers, result.body or b"", self.options)


def file_format_of(path: str, file_format: str) -> str:
    """``warc`` or ``wat``: as asked, or for ``auto`` by the file name (``*.wat.gz``)."""
    if file_format != "auto":
        return file_format
    return "wat" if ".wat" in path.rsplit("/", 1)[-1].lower() else "warc"


def bucket_of(uid: str, num_buckets: int) -> int:
    # The low hex digits of the uid: independent of shard_of(), which reads the high ones.
    return int(uid[8:16], 16) % num_buckets


def split_by_bucket(table: pa.Table, num_buckets: int) -> Iterator[tuple[int, pa.Table]]:
    buckets = np.fromiter(
        (bucket_of(uid, num_buckets) for uid in table.column("uid").to_pylist()),
        dtype=np.int64,
        count=table.num_rows,
    )
    yield from split_by_index(table, buckets)


def spill_by_bucket(table: pa.Table, num_buckets: int, scratch: str) -> list:
    """``(bucket, ref)`` per bucket of a table's rows, the parts in one scratch file."""
    path = FileSystems.join(scratch, f"pairs-{uuid.uuid4().hex}.arrow")
    return write_parts(split_by_bucket(table, num_buckets), path)


def dedup_bucket(bucket: int, refs: Iterable[tuple[str, int]]) -> Iterator:
    tables = [table for table in read_parts(refs) if table.num_rows]
    if not tables:
        return
    table = pa.concat_tables(tables)
    unique = keep_first_per_uid(table)
    yield unique
    yield beam.pvalue.TaggedOutput(TALLIES, {"pairs/duplicates": table.num_rows - unique.num_rows})


class DedupPairs(beam.PTransform):
    """Keeps one row per uid across the whole job (see the module docstring)."""

    def __init__(self, num_buckets: int, scratch: str):
        super().__init__()
        self.num_buckets = num_buckets
        self.scratch = scratch

    def expand(self, tables):
        return (
            tables
            | "KeyByBucket" >> beam.FlatMap(spill_by_bucket, self.num_buckets, self.scratch)
            | "GroupByBucket" >> beam.GroupByKey()
            | "KeepFirstPerUid"
            >> beam.FlatMapTuple(dedup_bucket).with_outputs(TALLIES, main="pairs")
        )


class Crawl(beam.PTransform):
    """Input files (or page-URL batches) -> unique pairs tables, and tallies for stats.json."""

    def __init__(self, harvest: beam.DoFn, num_buckets: int, scratch: str):
        super().__init__()
        self.harvest = harvest
        self.num_buckets = num_buckets
        self.scratch = scratch

    def expand(self, inputs):
        # (beam.Create already reshuffles its elements over the workers.)
        harvested = inputs | "Harvest" >> beam.ParDo(self.harvest).with_outputs(
            TALLIES, main="pairs"
        )
        unique = harvested.pairs | "Dedup" >> DedupPairs(self.num_buckets, self.scratch)
        tallies = (harvested[TALLIES], unique[TALLIES]) | "AllTallies" >> beam.Flatten()
        return unique.pairs, tallies


def crawl_inputs(pattern: str) -> list[tuple[str, int]]:
    """(path, bytes) of the files a glob (or a folder) names; none, or only empty ones, is
    a usage error."""
    files = sized_inputs(pattern)
    if not any(size for _, size in files):
        what = f"all {len(files)} files are" if len(files) > 1 else "the file is"
        raise UsageError(f"--input {pattern}: {what} empty (0 bytes), nothing to crawl")
    return files


def read_page_urls(path: str) -> list[str]:
    """The non-blank, non-comment lines of a page-URL list."""
    if not FileSystems.exists(path):
        raise UsageError(f"--page-urls {path}: no such file")
    with FileSystems.open(path) as handle:
        lines = handle.read().decode("utf-8", "replace").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


# Input per output shard when --shards is not given: rough yields of Common Crawl (a
# page gives ~10 pairs; a WAT file holds a WARC file's links in ~1/8 of its bytes). A shard is
# sorted in one worker's memory, so its size, not the crawl's, must stay bounded.
SHARD_INPUT_BYTES = {"warc": 1 << 30, "wat": 128 << 20}
SHARD_PAGE_URLS = 50_000


def input_units(files, urls, file_format: str = "auto") -> float:
    """The input's size in shards' worth: (path, bytes) of its files (as listed, nothing
    read), or its page URLs."""
    if urls is not None:
        return len(urls) / SHARD_PAGE_URLS
    return sum(size / SHARD_INPUT_BYTES[file_format_of(path, file_format)] for path, size in files)


def default_num_shards(files, urls, file_format: str = "auto") -> int:
    """Output shards from the input's size."""
    return max(MIN_SHARDS, math.ceil(input_units(files, urls, file_format)))


def default_dedup_buckets(files, urls, file_format: str = "auto") -> int:
    """Dedup buckets from the input's size (~20k pairs a bucket)."""
    buckets = math.ceil(MIN_DEDUP_BUCKETS * input_units(files, urls, file_format))
    return min(MAX_DEDUP_BUCKETS, max(MIN_DEDUP_BUCKETS, buckets))


# What HarvestFile counts per input file (stats.json's counts), and its progress counter.
FILES_READ, FILES_EMPTY, FILES_WITHOUT_RECORDS = (
    "files/read",
    "files/empty",
    "files/without_records",
)
INPUT_BYTES = "input_bytes"


def meter_of(files, urls) -> Meter:
    """Progress in bytes of WARC/WAT read (the whole input's size is known from its
    listing), or in page URLs fetched."""
    if urls is not None:
        return Meter(JOB, len(urls), " pages")
    done = lambda counters: counters.get(INPUT_BYTES, 0)  # noqa: E731
    return Meter(JOB, sum(size for _, size in files), "B", done, unit_scale=True)


def files_without_records(stats: dict, pattern: str) -> list[str]:
    """A warning about input files that held no record; an error when none held any."""
    counts = stats.get("counts", {})
    read = counts.get(FILES_READ, 0)
    empty, without = counts.get(FILES_EMPTY, 0), counts.get(FILES_WITHOUT_RECORDS, 0)
    if not empty + without:
        return []
    kinds = [f"{empty} empty" if empty else "", f"{without} not WARC/ARC/WAT" if without else ""]
    found = " and ".join(kind for kind in kinds if kind)
    if empty + without == read:
        raise UsageError(f"--input {pattern}: no WARC, ARC or WAT record in any file ({found})")
    return [f"{empty + without} of {read} input files held no WARC, ARC or WAT record ({found})"]


def page_fetch_config(args: argparse.Namespace) -> FetchConfig:
    """The fetcher's settings from the flags; pages come back undecoded, for
    pipeline.crawl.payload to decode as it decodes WARC records."""
    return fetch_config(args, decode_content=False)


def inputs_and_harvest(pipeline, args, options: HarvestOptions, files, urls):
    if urls is None:
        paths = [path for path, _ in files]
        return pipeline | "InputFiles" >> beam.Create(paths), HarvestFile(args.format, options)
    unit_of = unit_function(args.politeness_unit)
    batches = batches_by_unit(urls, args.fetch_batch_size, unit_of)
    harvest = FetchPages(options, page_fetch_config(args), args.politeness_unit)
    return pipeline | "PageUrlBatches" >> beam.Create(batches), harvest


def execute(args: argparse.Namespace, pipeline_options) -> dict:
    """The job, its flags parsed and checked (cli.py): returns the stats document it wrote,
    or {} when it only submitted the job (Dataflow without waiting, or a template)."""
    opt_out = read_list(args.opt_out, read_text) if args.opt_out else None
    options = HarvestOptions(args.max_page_bytes, args.include_empty_alt, opt_out=opt_out)
    files = crawl_inputs(args.input) if args.input else None
    if files:
        check_crawl_inputs([path for path, _ in files], open_raw)  # the door (records.py)
    urls = read_page_urls(args.page_urls) if args.page_urls else None
    if args.shards is None:
        args.shards = default_num_shards(files, urls, args.format)
    if args.key_buckets is None:
        args.key_buckets = default_dedup_buckets(files, urls, args.format)
    if not FileSystems.exists(args.output):
        FileSystems.mkdirs(args.output)
    pipeline = beam.Pipeline(options=pipeline_options)
    inputs, harvest = inputs_and_harvest(pipeline, args, options, files, urls)
    pairs, tallies = inputs | "Crawl" >> Crawl(
        harvest, args.key_buckets, scratch_folder(args.output)
    )
    written = pairs | "WritePairs" >> WriteShards(
        args.output, "pairs", CRAWL_PAIR_SCHEMA, args.shards
    )
    written_counts = written | "CountWritten" >> beam.MapTuple(
        lambda path, rows: {"pairs/written": rows}
    )
    extra = {"job": JOB, "unit": "records", "mode": mode_of(args), "shards": args.shards}
    (
        (tallies, written_counts)
        | "AllCounts" >> beam.Flatten()
        | "Stats" >> WriteStats(args.output, extra)
    )
    seconds = run_job(pipeline, meter_of(files, urls), pipeline_options, args.progress_every)
    if seconds is None:
        return {}
    remove_folder(scratch_folder(args.output))
    stats = read_stats(args.output)
    pairs_written = stats["counts"].get("pairs/written", 0)
    output = f"{args.output}: {args.shards} shards pairs-*.parquet ({pairs_written:,} unique pairs)"
    warnings = files_without_records(stats, args.input) if files else []
    print(summary(JOB, stats, seconds, [output], warnings=warnings), flush=True)
    return stats


def scratch_folder(output_dir: str) -> str:
    """Where harvested pairs wait for their dedup bucket; removed at the end."""
    return FileSystems.join(output_dir, "_scratch")


def mode_of(args: argparse.Namespace) -> str:
    return "page-urls" if args.page_urls else args.format
