"""align-download: pair shards -> image shards (every pair, ``ok`` with its image or a failure).

One output shard per input shard, named after it (``pairs-00003-of-00008.parquet`` ->
``images-00003-of-00008.parquet``), written to a temporary name and renamed when complete.
A rerun skips every output shard that is complete (its row count equals its input's) and
redoes the rest, so an interrupted job resumes where it stopped and ends byte-identical to an
uninterrupted one. Rows keep their input order; row groups have a fixed size.

Inside a shard the work is streamed: a worker's Fetcher keeps ``--threads`` requests in
flight (at most ``--per-host-concurrency`` per host, ``--per-host-rate`` starts per second),
and decoding runs on the same threads (Pillow releases the GIL). Politeness caps are per
worker: a host sees at most workers x per-host-concurrency connections.

Columns beyond the pair contract (a URL list's ``similarity``...) are carried through as they are.
The input is checked at the door (pipeline/records.py) before anything is fetched.

stats.json: ``in`` = pairs read, ``kept`` = status ok, ``rejected`` by failure status;
``counts`` holds ``bytes_downloaded``, ``shards_written`` and ``shards_resumed``; ``input``
names the pairs read, so the filter's report can follow the curation back to the text filter.
"""

from __future__ import annotations

import argparse
import itertools
import os
import threading
from collections import Counter
from collections.abc import Iterator, Sequence

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from filters.cli import UsageError
from pipeline.download.imaging import process_image
from pipeline.fetch.fetcher import FetchConfig, Fetcher, FetchResult
from pipeline.fetch.settings import fetch_config
from pipeline.progress import LiveTally, Meter, run_job, summary
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
    rows_to_table,
    total_rows,
)
from pipeline.stats import IN, KEPT, WriteStats, read_stats, rejected

JOB = "align-download"  # the command, and the namespace of the job's Beam counters

ROW_GROUP = 256  # rows per Parquet row group: ~10 MB of 346-px JPEGs
INPUT_PREFIX = "pairs-"
OUTPUT_PREFIX = "images-"
IMAGE_ACCEPT = "image/avif,image/webp,image/apng,image/*,*/*;q=0.8"


def output_name(input_path: str) -> str:
    """images-<rest>.parquet for pairs-<rest>.parquet; images-<name>.parquet otherwise."""
    base = input_path.rstrip("/").rsplit("/", 1)[-1]
    stem = base[: -len(".parquet")] if base.endswith(".parquet") else base
    stem = stem[len(INPUT_PREFIX) :] if stem.startswith(INPUT_PREFIX) else stem
    return f"{OUTPUT_PREFIX}{stem}.parquet"


def input_paths(spec: str) -> list[str]:
    """The shards an --input names: a directory's pairs-*.parquet, a glob or one file; sorted."""
    try:
        return match_shards(spec, [INPUT_PREFIX.rstrip("-")], "pair shards")[1]
    except FileNotFoundError:
        if match_files(FileSystems.join(spec, f"{OUTPUT_PREFIX}*.parquet")):
            raise UsageError(
                f"--input {spec} holds downloaded images already: give them to align-filter"
            ) from None
        raise


def compression(schema: pa.Schema) -> dict[str, str]:
    """JPEG bytes do not compress: zstd on them would only cost CPU."""
    return {name: "none" if name == "image" else "zstd" for name in schema.names}


def plan_shards(paths: Sequence[str], output_dir: str) -> list[tuple[str, str]]:
    """(input, output) per shard; two inputs may not share an output name."""
    plan, seen = [], {}
    for path in paths:
        name = output_name(path)
        if name in seen:
            raise UsageError(f"inputs {seen[name]} and {path} would both write {name}")
        seen[name] = path
        plan.append((path, FileSystems.join(output_dir, name)))
    return plan


def tally_of_output(path: str) -> Counter:
    """What a finished shard holds, counted the way a fresh run would have counted it."""
    with FileSystems.open(path) as handle:
        statuses = pq.read_table(handle, columns=["status"]).column("status").to_pylist()
    tally = Counter({IN: len(statuses), "shards_resumed": 1})
    for status in statuses:
        tally[KEPT if status == STATUS_OK else rejected(status)] += 1
    return tally


class ImageOptions:
    """What becomes of downloaded bytes; a plain object so DoFns pickle small."""

    def __init__(self, image_size: int, upscale: bool, quality: int, max_pixels: int):
        self.image_size = image_size
        self.upscale = upscale
        self.quality = quality
        self.max_pixels = max_pixels


def image_record(result: FetchResult, options: ImageOptions, slots: threading.Semaphore) -> dict:
    """The download columns of one pair from its fetch (runs on a fetch thread)."""
    if result.status != STATUS_OK:
        return {"status": result.status, "error": result.error}
    with slots:  # bounds how many full-size images are decoded at once (memory)
        image = process_image(
            result.body, options.image_size, options.upscale, options.quality, options.max_pixels
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
    """One Fetcher (threads, DNS cache, robots cache, host gates) per worker process.

    A runner may run several bundles of this DoFn at once in one process (Dataflow runs
    one per core); sharing the fetcher keeps the per-host caps per worker, not per bundle.
    It lives as long as the process.
    """
    key = repr(config)
    with _WORKER_LOCK:
        if key not in _WORKER_FETCHERS:
            slots = threading.BoundedSemaphore(max(2, os.cpu_count() or 2))
            _WORKER_FETCHERS[key] = (Fetcher(config), slots)
        return _WORKER_FETCHERS[key]


class DownloadShard(beam.DoFn):
    """One input shard in, one complete output shard written; yields the shard's tally."""

    def __init__(self, fetch_config: FetchConfig, options: ImageOptions, schema: pa.Schema):
        self.fetch_config = fetch_config
        self.options = options
        self.live = LiveTally(JOB)
        self.schema = schema  # DOWNLOAD_SCHEMA and the input's extras

    def setup(self):
        self.fetcher, self.decode_slots = _worker_fetcher(self.fetch_config)

    def process(self, shard: tuple[str, str]) -> Iterator[dict]:
        input_path, output_path = shard
        expected = parquet_rows(input_path)
        if expected is not None and parquet_rows(output_path) == expected:
            tally = tally_of_output(output_path)
            self.live.add(tally)
        else:
            tally = self._download(input_path, output_path)
        self.live.flush()
        yield dict(tally)

    def _download(self, input_path: str, output_path: str) -> Counter:
        tally = Counter({"shards_written": 1})
        self.live.add(tally)
        temporary = output_path + ".tmp"
        with FileSystems.open(input_path) as source, FileSystems.create(temporary) as sink:
            columns = PAIR_SCHEMA.names + [field.name for field in extra_fields(self.schema)]
            pairs = _rows(pq.ParquetFile(source), columns)
            pairs_for_urls, pairs_for_output = itertools.tee(pairs)
            records = self.fetcher.map(
                (pair["url"] or "" for pair in pairs_for_urls),
                lambda result: image_record(result, self.options, self.decode_slots),
            )
            schema = self.schema
            with pq.ParquetWriter(sink, schema, compression=compression(schema)) as writer:
                batch = []
                for pair, record in zip(pairs_for_output, records, strict=True):
                    status = record["status"]
                    counts = {IN: 1, KEPT if status == STATUS_OK else rejected(status): 1}
                    counts["bytes_downloaded"] = record.pop("bytes", 0)
                    tally.update(counts)
                    self.live.add(counts)
                    batch.append({**pair, **record})
                    if len(batch) == ROW_GROUP:
                        writer.write_table(rows_to_table(batch, schema))
                        batch = []
                if batch or tally[IN] == 0:
                    writer.write_table(rows_to_table(batch, schema))
        publish(temporary, output_path)
        return tally


def _rows(parquet: pq.ParquetFile, columns: list[str]) -> Iterator[dict]:
    for batch in parquet.iter_batches(batch_size=ROW_GROUP, columns=columns):
        yield from batch.to_pylist()


class Download(beam.PTransform):
    """Downloads every planned shard; outputs the per-shard tallies."""

    def __init__(
        self, plan: list[tuple[str, str]], fetch_config: FetchConfig, options, schema: pa.Schema
    ):
        super().__init__()
        self.plan = plan
        self.fetch_config = fetch_config
        self.options = options
        self.schema = schema

    def expand(self, pipeline):
        return (
            pipeline
            | "Shards" >> beam.Create(self.plan)
            | "Spread" >> beam.Reshuffle()  # one shard per element, spread over workers
            | "DownloadShard"
            >> beam.ParDo(DownloadShard(self.fetch_config, self.options, self.schema))
        )


def execute(args: argparse.Namespace, pipeline_options) -> dict:
    """The job, its flags parsed and checked (cli.py): returns the stats document it wrote,
    or {} when it only submitted the job (Dataflow without waiting, or a template)."""
    config = fetch_config(args, accept=IMAGE_ACCEPT)
    paths = input_paths(args.input)
    schema = with_extras(DOWNLOAD_SCHEMA, check_input(paths, PAIRS))
    plan = plan_shards(paths, args.output)
    if not FileSystems.exists(args.output):
        FileSystems.mkdirs(args.output)
    options = ImageOptions(args.image_size, args.upscale, args.jpeg_quality, args.max_pixels)
    # The input lets a later report follow the curation back to the text filter's run.
    extra = {"job": JOB, "input": args.input}
    extra.update(image_size=args.image_size, jpeg_quality=args.jpeg_quality)
    pipeline = beam.Pipeline(options=pipeline_options)
    _ = (
        pipeline
        | "Download" >> Download(plan, config, options, schema)
        | "WriteStats" >> WriteStats(args.output, extra)
    )
    meter = Meter(JOB, total_rows([source for source, _ in plan]), " pairs")
    seconds = run_job(pipeline, meter, pipeline_options, args.progress_every)
    if seconds is None:
        return {}
    stats = read_stats(args.output)
    counts = stats["counts"]
    written, resumed = counts.get("shards_written", 0), counts.get("shards_resumed", 0)
    fetched = counts.get("bytes_downloaded", 0) / 1e6
    output = f"{args.output}: {len(plan)} shards images-*.parquet"
    output += f" ({written} written, {resumed} already complete; {fetched:,.1f} MB fetched)"
    print(summary(JOB, stats, seconds, [output], unit="pairs"), flush=True)
    return stats
