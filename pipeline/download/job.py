"""align-download: pair shards -> image shards (every pair ``ok`` with its image, a named
failure, or deferred to a later run).

The work is planned by host (pipeline/download/plan.py): pairs are counted by host, each
host is kept to its first ``--max-urls-per-host`` URLs and given to exactly one fetch list
(a large host: to at most ``--per-host-concurrency`` lists that share its budget). The pairs
wait in scratch files by host bucket (host_spill.py) and a list reads its own when it runs,
so only counts and file names pass through Beam. A list is
fetched by one worker with its own gates and robots.txt cache, so ``--per-host-concurrency``
and ``--per-host-rate`` hold for the whole job, on one machine or a hundred. A worker runs
many lists at once, the slowest (by politeness floor) first.

Each list writes ``images-<i>-of-<n>.parquet`` (its rows in fetch order), and before it the
pairs it deferred (``deferred/pairs-<i>-of-<n>.parquet``, the input of a later run) and the
robots.txt files it applied (``policies/policies-<i>-of-<n>.parquet``). A rerun skips every
list whose image shard is complete (its fingerprint matches) and redoes the rest, so an
interrupted job resumes where it stopped and ends byte-identical to an uninterrupted one.

Columns beyond the pair contract (a URL list's ``similarity``...) are carried through as they are.
The input is checked at the door (pipeline/records.py) before anything is fetched.

stats.json: ``in`` = pairs read, ``kept`` = status ok, ``rejected`` by failure status,
``deferred`` by budget; ``counts`` holds ``bytes_downloaded``, ``robots_fetched``,
``shards_written`` and ``shards_resumed``; ``input`` names the pairs read, so the filter's
report can follow the curation back to the text filter.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import threading
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms.window import GlobalWindows

from commandline.flags import UsageError
from pipeline.download import archive, archive_index, host_spill
from pipeline.download.imaging import process_image
from pipeline.download.plan import (
    HOST_URL_BUDGET,
    Part,
    fetch_order,
    fingerprint,
    list_of,
    num_lists,
    plan_host,
    politeness_floor,
    shares_of,
)
from pipeline.download.policies import POLICIES_FOLDER, policy_table
from pipeline.fetch.fetcher import FetchConfig, Fetcher, FetchResult
from pipeline.fetch.hostgate import Share
from pipeline.fetch.policy import HOST_FILES, prefetch
from pipeline.fetch.settings import fetch_config
from pipeline.fetch.units import unit_function
from pipeline.monitor import LiveTally, Meter, run_job, summary
from pipeline.optout import read_list, reason_of
from pipeline.records import (
    DOWNLOAD_SCHEMA,
    PAIR_SCHEMA,
    PAIRS,
    STATUS_OK,
    extra_fields,
    with_extras,
)
from pipeline.shards import (
    check_input,
    match_files,
    match_shards,
    parquet_rows,
    publish,
    read_text,
    remove_folder,
    rows_to_table,
    shard_name,
    total_rows,
)
from pipeline.stats import IN, KEPT, WriteStats, deferred, read_stats, rejected

JOB = "align-download"  # the command, and the namespace of the job's Beam counters

ROW_GROUP = 256  # rows per Parquet row group: ~10 MB of 346-px JPEGs
INPUT_PREFIX = "pairs-"
OUTPUT_PREFIX = "images"
DEFERRED_FOLDER = "deferred"
IMAGE_ACCEPT = "image/avif,image/webp,image/apng,image/*,*/*;q=0.8"
DEFERRED = "deferred_"  # a fetch status that leaves the pair for a later run
LISTS_IN_FLIGHT = 8  # fetch lists a worker runs at once (they share its fetch threads)
TALLY_KEY = b"align.tally"  # an image shard's footer: what its list counted
FINGERPRINT_KEY = b"align.fetch_list"  # and which list it holds (plan.fingerprint)


def input_paths(spec: str) -> list[str]:
    """The shards an --input names: a directory's pairs-*.parquet, a glob or one file; sorted."""
    try:
        return match_shards(spec, [INPUT_PREFIX.rstrip("-")], "pair shards")[1]
    except FileNotFoundError:
        if match_files(FileSystems.join(spec, f"{OUTPUT_PREFIX}-*.parquet")):
            raise UsageError(
                f"--input {spec} holds downloaded images already: give them to align-filter"
            ) from None
        raise


def compression(schema: pa.Schema) -> dict[str, str]:
    """JPEG bytes do not compress: zstd on them would only cost CPU."""
    return {name: "none" if name == "image" else "zstd" for name in schema.names}


class Settings:
    """What the workers need besides the fetcher's config; a plain object so DoFns pickle small."""

    def __init__(
        self,
        args: argparse.Namespace,
        output: str,
        lists: int,
        schema: pa.Schema,
        archive_settings: archive.ArchiveSettings | None = None,
        opt_out=None,
    ):
        self.image_size = args.image_size
        self.upscale = args.upscale
        self.quality = args.jpeg_quality
        self.max_pixels = args.max_pixels
        self.unit = args.politeness_unit
        self.max_urls = args.max_urls_per_host
        self.max_seconds = args.max_seconds_per_host
        self.rows_per_shard = args.rows_per_shard
        self.opt_out = opt_out  # --opt-out's list (pipeline/optout.py), or None
        self.output = output
        # With --archive, lists [0, archive_lists) are the archive's buckets, the rest
        # (none with --archive-only) the live lists of the pairs the archive lacks.
        self.archive_lists = lists if archive_settings else 0
        self.live_lists = 0 if archive_settings and archive_settings.only else lists
        self.lists = self.archive_lists + self.live_lists
        self.input_extras = [field.name for field in extra_fields(schema)]
        self.archive = archive_settings  # --archive: where images are read from first
        # DOWNLOAD_SCHEMA and the input's extras (and image_source with --archive)
        self.schema = archive.with_image_source(schema) if archive_settings else schema

    @property
    def pair_columns(self) -> list[str]:
        return PAIR_SCHEMA.names + self.input_extras

    @property
    def scratch(self) -> str:
        """Where the spilled pairs (and --archive's index) live while the job runs."""
        return FileSystems.join(self.output, "_scratch")

    def live_list(self, unit: str, part: int) -> int:
        return self.archive_lists + list_of(unit, part, self.live_lists)

    def path(self, index: int, folder: str | None = None) -> str:
        """The list's image shard, or its file in a subfolder (deferred/, policies/)."""
        if folder is None:
            return FileSystems.join(
                self.output, shard_name(OUTPUT_PREFIX, index, self.lists, ".parquet")
            )
        prefix = "pairs" if folder == DEFERRED_FOLDER else folder
        name = shard_name(prefix, index, self.lists, ".parquet")
        return FileSystems.join(self.output, folder, name)


def image_record(result: FetchResult, settings: Settings, slots: threading.Semaphore) -> dict:
    """The download columns of one pair from its fetch (runs on a fetch thread)."""
    if result.status != STATUS_OK:
        return {"status": result.status, "error": result.error}
    with slots:  # bounds how many full-size images are decoded at once (memory)
        image = process_image(
            result.body,
            settings.image_size,
            settings.upscale,
            settings.quality,
            settings.max_pixels,
        )
    record = {
        "status": image.status,
        "error": image.error,
        "sha256": image.sha256,
        "mime": image.mime,
        "bytes": len(result.body),
    }
    if image.status == STATUS_OK:
        record.update(
            image=image.image,
            width=image.width,
            height=image.height,
            original_width=image.original_width,
            original_height=image.original_height,
            phash=image.phash,
        )
    return record


_WORKER_LOCK = threading.Lock()
_WORKER_FETCHERS: dict[str, tuple[Fetcher, threading.Semaphore]] = {}


def _worker_fetcher(config: FetchConfig) -> tuple[Fetcher, threading.Semaphore]:
    """One Fetcher (threads, connection pools, DNS cache) per worker process, for its life.

    Politeness is not the fetcher's here: each fetch list brings its own gates and robots
    cache (Fetcher.politeness), so sharing the threads never shares a host's budget.
    """
    key = repr(config)
    with _WORKER_LOCK:
        if key not in _WORKER_FETCHERS:
            slots = threading.BoundedSemaphore(max(2, os.cpu_count() or 2))
            _WORKER_FETCHERS[key] = (Fetcher(config), slots)
        return _WORKER_FETCHERS[key]


# --- planning -------------------------------------------------------------------------------


class PlanHost(beam.DoFn):
    """A host's URL count in, its parts out (rows not yet read: host_spill.fill), each keyed
    by the fetch list that owns it.

    A host split over several lists has its policy files (robots.txt, ai.txt, tdmrep.json)
    fetched here, once, before any of its parts starts: every part applies the same answers.
    """

    def __init__(self, fetch_config: FetchConfig, settings: Settings):
        self.fetch_config = fetch_config
        self.settings = settings

    def setup(self):
        self.fetcher, _ = _worker_fetcher(self.fetch_config)

    def process(self, element: tuple[str, int], files: list[str]) -> Iterator[tuple[int, Part]]:
        unit, count = element
        s = self.settings
        concurrency = self.fetch_config.per_host_concurrency
        parts = plan_host(unit, count, s.max_urls, concurrency, s.rows_per_shard)
        if len(parts) > 1 and self.fetch_config.respect_robots:
            origins = host_spill.kept_origins(files, s.live_lists, unit, s.max_urls)
            self._fetch_policies(parts, origins)
        for part in parts:
            yield s.live_list(unit, part.share.index), part

    def _fetch_policies(self, parts: list[Part], origins: set[str]) -> None:
        politeness = self.fetcher.politeness(unit_function(self.settings.unit))
        origins = sorted(origins)
        files = self.fetch_config.policy_files
        answers, records = prefetch(politeness.robots.fetch, origins, files)
        for part in parts:
            part.policies = answers
        parts[0].records = records
        self.fetcher.release({parts[0].unit}, politeness.unit_of)


# --- fetching -------------------------------------------------------------------------------


class FetchLists(beam.DoFn):
    """Fetch lists in, one tally per list out.

    A bundle's lists are gathered, then run ``LISTS_IN_FLIGHT`` at a time on the worker's
    shared fetch threads, the one with the longest politeness floor first (the dominant
    host's list must not wait behind quick ones). Their counts reach the progress line from
    this thread, the only one whose Beam counters count.
    """

    def __init__(self, fetch_config: FetchConfig, settings: Settings):
        self.fetch_config = fetch_config
        self.settings = settings
        self.live = LiveTally(JOB)

    def setup(self):
        self.fetcher, self.decode_slots = _worker_fetcher(self.fetch_config)

    def start_bundle(self):
        self.pending: list[tuple[int, list[Part]]] = []

    def process(self, element: tuple[int, Sequence[Part]], files: list[str]):
        index, parts = element
        self.files = files
        self.pending.append((index, sorted(parts, key=lambda part: part.key)))

    def finish_bundle(self):
        rate = self.fetch_config.per_host_rate
        lists = sorted(self.pending, key=lambda item: (-politeness_floor(item[1], rate), item[0]))
        counts: queue.SimpleQueue = queue.SimpleQueue()
        with ThreadPoolExecutor(LISTS_IN_FLIGHT, thread_name_prefix="fetch-list") as pool:
            running = {pool.submit(self._run_list, index, parts, counts) for index, parts in lists}
            while running:
                finished, running = wait(running, timeout=0.5, return_when=FIRST_COMPLETED)
                self._drain(counts)
                for future in finished:
                    yield GlobalWindows.windowed_value(dict(future.result()))
        self._drain(counts)
        self.live.flush()

    def _drain(self, counts: queue.SimpleQueue) -> None:
        while not counts.empty():
            self.live.add(counts.get())
        self.live.tick()

    def _run_list(self, index: int, parts: list[Part], counts: queue.SimpleQueue) -> Counter:
        s = self.settings
        host_spill.fill(parts, self.files, s.live_lists, s.max_urls)  # only while it runs
        try:
            expected = fingerprint(parts)
            done = finished_tally(self.settings, index, expected)
            if done is not None:
                counts.put(done)
                return done
            return FetchList(self, index, parts, expected, counts).run()
        finally:
            for part in parts:  # the bundle's other lists may run long after this one
                part.rows, part.deferred = [], []


class FetchList:
    """One list fetched and written: its image shard, deferred pairs and policy record."""

    def __init__(self, owner: FetchLists, index: int, parts, expected: str, counts):
        self.fetcher, self.slots = owner.fetcher, owner.decode_slots
        self.settings = owner.settings
        self.index, self.parts, self.fingerprint, self.counts = index, parts, expected, counts
        self.tally = Counter({"shards_written": 1})
        self.deferred: list[dict] = []
        self.reader = (
            archive.ArchiveReader(self.settings.archive) if self.settings.archive else None
        )

    def run(self) -> Counter:
        s = self.settings
        known = {key: seed for part in self.parts for key, seed in part.policies.items()}
        shares = shares_of(self.parts)
        politeness = self.fetcher.politeness(unit_function(s.unit), shares, s.max_seconds, known)
        for part in self.parts:
            self._defer(part.deferred, HOST_URL_BUDGET)
        order = [row for _, row in fetch_order(self.parts) if not self._listed(row)]
        process = lambda result: image_record(result, s, self.slots)  # noqa: E731
        if self.reader:
            fetch = lambda urls, process: self.fetcher.map(urls, process, politeness=politeness)  # noqa: E731
            records = archive.records_in_order(order, self.reader, process, fetch)
        else:
            records = self.fetcher.map(
                (row["url"] or "" for row in order), process, politeness=politeness
            )
        temporary = s.path(self.index) + ".tmp"
        try:
            with FileSystems.create(temporary) as sink:
                self._write_images(sink, order, records, politeness)
        finally:
            if self.reader:
                self.reader.close()
        self._write_deferred()
        policies = [record for part in self.parts for record in part.records]
        policies += self.reader.records if self.reader else []
        self._write_policies(policies + politeness.policies.records, politeness.unit_of)
        publish(temporary, s.path(self.index))  # last: a published shard is a finished list
        self.fetcher.release({part.unit for part in self.parts}, politeness.unit_of)
        return self.tally

    def _write_images(self, sink, order: list[dict], records: Iterator[dict], politeness) -> None:
        metadata = {FINGERPRINT_KEY: self.fingerprint.encode()}
        schema = self.settings.schema
        batch: list[dict] = []
        # The tally goes into the footer, so it is computed before the writer closes.
        with pq.ParquetWriter(sink, schema, compression=compression(schema)) as writer:
            for pair, record in zip(order, records, strict=True):
                status = record["status"]
                if status.startswith(DEFERRED):  # a host's budget, or its wishes unknown
                    self._defer([pair], status[len(DEFERRED) :])
                    continue
                counts = {"bytes_downloaded": record.pop("bytes", 0)}
                listed = self._listed_image(record)
                if listed:  # an image the --opt-out list names by its bytes: never written
                    self._count({**counts, IN: 1, rejected(listed): 1})
                    continue
                self._count({**counts, IN: 1, KEPT if status == STATUS_OK else rejected(status): 1})
                batch.append({**pair, **record})
                if len(batch) == ROW_GROUP:
                    writer.write_table(rows_to_table(batch, schema))
                    batch = []
            writer.write_table(rows_to_table(batch, schema))
            records = politeness.policies.records + [r for p in self.parts for r in p.records]
            robots = sum(record.file == "robots.txt" for record in records)
            self._count({"robots_fetched": robots, "policy_files_fetched": len(records)})
            if self.reader:  # the archived policy files applied (none fetched)
                self._count({"policy_files_archived": len(self.reader.records)})
            footer = Counter(self.tally)
            footer.pop("shards_written")
            metadata[TALLY_KEY] = json.dumps(dict(footer), sort_keys=True).encode()
            writer.add_key_value_metadata(metadata)

    def _listed(self, row: dict) -> bool:
        """Whether ``--opt-out`` names the pair (its URL, page, uid, prefix or domain): it is
        counted, never fetched, never written."""
        opt_out = self.settings.opt_out
        kind = opt_out.pair_kind(row["url"], row["page_url"], row["uid"]) if opt_out else None
        if kind:
            self._count({IN: 1, rejected(reason_of(kind)): 1})
        return kind is not None

    def _listed_image(self, record: dict) -> str | None:
        opt_out = self.settings.opt_out
        if not opt_out or not opt_out.has_image_entries or record["status"] != STATUS_OK:
            return None
        kind = opt_out.image_kind(record.get("sha256"), record.get("phash"))
        return reason_of(kind) if kind else None

    def _defer(self, rows: list[dict], reason: str) -> None:
        if rows:
            self.deferred.extend(rows)
            self._count({IN: len(rows), deferred(reason): len(rows)})

    def _count(self, counts: dict) -> None:
        self.tally.update(counts)
        self.counts.put(counts)

    def _write_deferred(self) -> None:
        path = self.settings.path(self.index, DEFERRED_FOLDER)
        if self.deferred:
            schema = with_extras(PAIR_SCHEMA, self.settings.schema)
            schema = pa.schema([f for f in schema if f.name in self.settings.pair_columns])
            rows = sorted(self.deferred, key=lambda row: row["uid"])
            _write_table(rows_to_table(rows, schema), path)
        elif FileSystems.exists(path):
            FileSystems.delete([path])  # an earlier, different plan's leftovers

    def _write_policies(self, records, unit_of) -> None:
        if records:
            path = self.settings.path(self.index, POLICIES_FOLDER)
            _write_table(policy_table(records, unit_of), path)


def _write_table(table: pa.Table, path: str) -> None:
    """Writes a list's deferred/ or policies/ file, atomically, making its folder if needed."""
    ensure_folder(path.rsplit("/", 1)[0])
    with FileSystems.create(path + ".tmp") as handle:
        pq.write_table(table, handle, compression="zstd")
    publish(path + ".tmp", path)


def ensure_folder(folder: str) -> None:
    """A folder that exists afterwards, though lists finishing together race to make it."""
    if FileSystems.exists(folder):
        return
    try:
        FileSystems.mkdirs(folder)
    except OSError:  # Beam's local mkdirs refuses a folder another thread just made
        if not FileSystems.exists(folder):
            raise


def finished_tally(settings: Settings, index: int, expected: str) -> Counter | None:
    """What a finished list counted (from its shard's footer), or None when its shard is
    missing, damaged, or holds another plan's list (or its companions were lost since)."""
    path = settings.path(index)
    if not FileSystems.exists(path):
        return None
    try:
        with FileSystems.open(path) as handle:
            metadata = pq.ParquetFile(handle).metadata.metadata or {}
    except (OSError, pa.ArrowException):
        return None
    if metadata.get(FINGERPRINT_KEY) != expected.encode() or TALLY_KEY not in metadata:
        return None
    tally = Counter(json.loads(metadata[TALLY_KEY]))
    companions = [(DEFERRED_FOLDER, sum(v for k, v in tally.items() if k.startswith("deferred/")))]
    companions.append(
        (POLICIES_FOLDER, tally["policy_files_fetched"] + tally["policy_files_archived"])
    )
    for folder, rows in companions:  # published before the shard; lost or damaged since?
        if rows and parquet_rows(settings.path(index, folder)) is None:
            return None
    return tally + Counter({"shards_resumed": 1})


class ArchiveLists(beam.DoFn):
    """With --archive: a bucket in, its fetch list written (the bucket's pairs that the archive
    answers, read by offset; archive.py), its tally out; with ``--archive-only`` the pairs it
    lacks are rejected there, else they are spilled by host (host_spill.py; the file out on
    ``LIVE_FILES``, ``(host, count)`` on ``LIVE``) to be planned and fetched live. The
    bucket's pairs and captures are read from the scratch files (archive_index.py), so a
    worker holds one bucket at a time."""

    def __init__(self, fetch_config: FetchConfig, settings: Settings):
        self.fetch_config = fetch_config
        self.settings = settings
        self.live = LiveTally(JOB)

    def setup(self):
        self.fetcher, self.decode_slots = _worker_fetcher(self.fetch_config)

    def process(self, bucket: int, pair_files: list[str], capture_files: list[str]):
        s = self.settings
        lookup = archive_index.CaptureLookup(capture_files, s.archive_lists)
        rows = archive.resolve(archive_index.bucket_rows(pair_files, bucket), lookup)
        if s.archive.robots:
            rows = archive.attach_policies(rows, lookup, s.archive.policy_files)
        listed, live = [], []
        for row in rows:
            if row[archive.ARCHIVE]["status"] == archive.NOT_IN_ARCHIVE and not s.archive.only:
                live.append({key: row[key] for key in s.pair_columns})
            else:
                listed.append({**row, archive.ARCHIVE_SOURCE: archive.archive_source(row)})
        if live:  # to be planned by host and fetched live, like the pairs of a run without
            yield from self._spill(live)
        if listed:
            yield self._run_list(bucket, [Part(archive.ARCHIVE_UNIT, Share(), listed)])

    def _spill(self, rows: list[dict]) -> Iterator:
        s = self.settings
        schema = with_extras(PAIR_SCHEMA, s.schema)
        schema = pa.schema([field for field in schema if field.name in s.pair_columns])
        path, counts = host_spill.spill(
            rows_to_table(rows, schema), s.unit, s.live_lists, s.scratch
        )
        yield beam.pvalue.TaggedOutput(LIVE_FILES, path)
        for unit, count in sorted(counts.items()):
            yield beam.pvalue.TaggedOutput(LIVE, (unit, count))

    def _run_list(self, index: int, parts: list[Part]) -> dict:
        expected = fingerprint(parts)
        counts: queue.SimpleQueue = queue.SimpleQueue()
        tally = finished_tally(self.settings, index, expected)
        if tally is None:
            tally = FetchList(self, index, parts, expected, counts).run()
        else:
            counts.put(tally)
        while not counts.empty():
            self.live.add(counts.get())
        self.live.flush()
        return dict(tally)


LIVE = "live"  # ArchiveLists' tagged outputs: (host, count) of the pairs it lacks
LIVE_FILES = "live_files"  # and the scratch files they were spilled to


class Download(beam.PTransform):
    """Plans the fetch lists by host, fetches them; outputs one tally per list. With
    --archive, the archive's lists first (ArchiveLists), then the live ones of the rest."""

    def __init__(self, paths: list[str], fetch_config: FetchConfig, settings: Settings):
        super().__init__()
        self.paths = paths
        self.fetch_config = fetch_config
        self.settings = settings

    def expand(self, pipeline):
        s = self.settings
        shards = pipeline | "Shards" >> beam.Create(self.paths) | "Spread" >> beam.Reshuffle()
        tallies = []
        if s.archive:
            live, archived = self._archive(pipeline, shards)
            tallies.append(archived)
        else:
            spiller = host_spill.SpillHosts(s.scratch, s.live_lists, s.unit, s.pair_columns)
            spilled = shards | "SpillHosts" >> beam.ParDo(spiller).with_outputs(
                host_spill.COUNTS, main=LIVE_FILES
            )
            live = spilled[LIVE_FILES], spilled[host_spill.COUNTS]
        if s.live_lists:
            files = beam.pvalue.AsList(live[0])
            tallies.append(
                live[1]
                | "CountByHost" >> beam.CombinePerKey(sum)
                | "PlanHost" >> beam.ParDo(PlanHost(self.fetch_config, s), files)
                | "GroupByList" >> beam.GroupByKey()
                | "FetchLists" >> beam.ParDo(FetchLists(self.fetch_config, s), files)
            )
        tallies = tallies | "Tallies" >> beam.Flatten()
        _ = (
            tallies
            | "CountLists" >> beam.combiners.Count.Globally()
            | "RemoveScratch" >> beam.Map(lambda _, scratch=s.scratch: remove_folder(scratch))
        )
        return tallies

    def _archive(self, pipeline, shards):
        """The archive's lists: ((the files its lacking pairs were spilled to, their counts by
        host), the lists' tallies)."""
        s, archived = self.settings, self.settings.archive
        columns = s.pair_columns
        pair_files = shards | "SpillPairs" >> beam.ParDo(
            archive_index.SpillPairs(s.scratch, s.archive_lists, columns)
        )
        indexer = archive_index.IndexToScratch(
            s.scratch, s.archive_lists, archived.files, bool(archived.indexes)
        )
        capture_files = (
            pipeline
            | "ArchiveFiles" >> beam.Create(list(archived.indexes or archived.files))
            | "SpreadFiles" >> beam.Reshuffle()
            | "IndexArchive" >> beam.ParDo(indexer)
        )
        lists = (
            pipeline
            | "Buckets" >> beam.Create(range(s.archive_lists))
            | "SpreadBuckets" >> beam.Reshuffle()
            | "ArchiveLists"
            >> beam.ParDo(
                ArchiveLists(self.fetch_config, s),
                beam.pvalue.AsList(pair_files),
                beam.pvalue.AsList(capture_files),
            ).with_outputs(LIVE, LIVE_FILES, main="tallies")
        )
        return (lists[LIVE_FILES], lists[LIVE]), lists.tallies


def execute(args: argparse.Namespace, pipeline_options) -> dict:
    """The job, its flags parsed and checked (cli.py): returns the stats document it wrote,
    or {} when it only submitted the job (Dataflow without waiting, or a template)."""
    config = fetch_config(
        args, accept=IMAGE_ACCEPT, policy_files=HOST_FILES, respect_tdm_header=True
    )
    paths = input_paths(args.input)
    schema = with_extras(DOWNLOAD_SCHEMA, check_input(paths, PAIRS))
    rows = total_rows(paths)
    opt_out = read_list(args.opt_out, read_text) if args.opt_out else None
    archived = archive.archive_settings(args, config)
    lists = num_lists(len(paths), rows or 0, args.rows_per_shard)
    settings = Settings(args, args.output, lists, schema, archived, opt_out)
    lists = settings.lists  # with --archive: the archive's and the live ones
    ensure_folder(args.output)
    # The input lets a later report follow the curation back to the text filter's run.
    extra = {"job": JOB, "input": args.input}
    extra.update(image_size=args.image_size, jpeg_quality=args.jpeg_quality)
    extra["politeness"] = politeness_of(args)
    if settings.archive:
        extra["archive"] = {"files": len(settings.archive.files), "only": args.archive_only}
    pipeline = beam.Pipeline(options=pipeline_options)
    _ = (
        pipeline
        | "Download" >> Download(paths, config, settings)
        | "WriteStats" >> WriteStats(args.output, extra)
    )
    meter = Meter(JOB, rows, " pairs")
    seconds = run_job(pipeline, meter, pipeline_options, args.progress_every)
    if seconds is None:
        return {}
    stats = read_stats(args.output)
    # Every pair given leaves once; a shortfall means a runner lost elements (docs/archive.md).
    lost = (
        [f"{rows - stats['in']:,} of the {rows:,} pairs given never came out"]
        if rows and stats["in"] != rows
        else []
    )
    print(summary(JOB, stats, seconds, outputs_of(args.output, lists, stats), "pairs", lost))
    return stats


def politeness_of(args: argparse.Namespace) -> dict:
    """The caps the job held, for stats.json: each host's, for the whole job."""
    return {
        "unit": args.politeness_unit,
        "per_host_concurrency": args.per_host_concurrency,
        "per_host_rate": args.per_host_rate,
        "max_urls_per_host": args.max_urls_per_host,
        "max_seconds_per_host": args.max_seconds_per_host,
    }


def outputs_of(output: str, lists: int, stats: dict) -> list[str]:
    counts = stats["counts"]
    written, resumed = counts.get("shards_written", 0), counts.get("shards_resumed", 0)
    fetched = counts.get("bytes_downloaded", 0) / 1e6
    lines = [
        f"{output}: {written + resumed} shards {OUTPUT_PREFIX}-*-of-{lists:05d}.parquet"
        f" ({written} written, {resumed} already complete; {fetched:,.1f} MB fetched)",
        f"{FileSystems.join(output, POLICIES_FOLDER)}: robots.txt applied "
        f"({counts.get('robots_fetched', 0):,} fetched"
        + (
            f"; {counts['policy_files_archived']:,} policy files read from the archive)"
            if "policy_files_archived" in counts
            else ")"
        ),
    ]
    if stats.get("deferred"):
        folder = FileSystems.join(output, DEFERRED_FOLDER)
        lines.append(f"{folder}: the deferred pairs; download them later with --input {folder}")
    return lines
