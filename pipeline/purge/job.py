"""align-purge's pipeline: resolve the list to uids across every folder, then rewrite the
shards that hold one, then record the purge beside each folder's stats.json.

Two passes, because an image-hash or page entry names rows that only some stages can see
(a ``sha256:`` matches the download's and the final shards' rows; the pairs of the crawl and
the text filter have no image): the first pass reads every Parquet file of every folder and
gathers the uids the list matches, and why; the second removes every row, TFRecord example
and WebDataset record whose uid was gathered (or that matches an entry itself) from every file.
Only the files that held such a record are rewritten (formats.py, atomically); the rest are
not opened for writing, so they stay byte-identical, and a second purge finds nothing.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
from collections import Counter
from collections.abc import Iterator

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from commandline.flags import UsageError
from pipeline.monitor import Meter, run_job
from pipeline.optout import MATCH_ORDER, OptOutList, parse_list, reason_of
from pipeline.purge.formats import MATCH_COLUMNS, format_of, purge_file, read_parquet
from pipeline.purge.ledger import purge_record, updated_stats
from pipeline.shards import match_files, read_text
from pipeline.stats import STATS_FILE, read_stats, write_json

JOB = "align-purge"
# Where the jobs write records: a folder's own shards and its rejects/, measurements/, shards/.
PATTERNS = ("*.parquet", "*/*.parquet", "*/*.tfrecord", "*/*.tar")
FILES = "files"


def folder_files(folder: str) -> list[str]:
    """Every shard of a job's output folder; scratch (``_*``) and the report are not records."""
    found = []
    for pattern in PATTERNS:
        for path in match_files(FileSystems.join(folder, pattern)):
            inner = path[len(folder.rstrip("/")) + 1 :]
            if not inner.startswith(("_", "report/")) and format_of(path):
                found.append(path)
    return sorted(set(found))  # on gs:// a "*" also matches "/": patterns overlap


def matches(path: str, listed: OptOutList) -> Iterator[tuple[str, str]]:
    """(uid, kind) of every row of a Parquet file that an entry names."""
    table = read_parquet(path, list(MATCH_COLUMNS))
    if "uid" not in table.column_names:
        return
    for uid, kind in zip(table.column("uid").to_pylist(), listed.kinds(table), strict=True):
        if kind is not None and uid is not None:
            yield uid, kind


class FirstKind(beam.CombineFn):
    """uid -> the first kind (in MATCH_ORDER) that named it."""

    def create_accumulator(self) -> dict:
        return {}

    def add_input(self, found: dict, item: tuple[str, str]) -> dict:
        uid, kind = item
        held = found.get(uid)
        if held is None or MATCH_ORDER.index(kind) < MATCH_ORDER.index(held):
            found[uid] = kind
        return found

    def merge_accumulators(self, accumulators) -> dict:
        merged: dict = {}
        for found in accumulators:
            for item in found.items():
                self.add_input(merged, item)
        return merged

    def extract_output(self, found: dict) -> dict:
        return found


def verdict_of(listed: OptOutList, resolved: dict):
    """A record's reason to go: its uid was resolved, or its own columns match an entry."""

    def verdict(row: dict) -> str | None:
        kind = resolved.get(row.get("uid"))
        if kind is None:
            kind = listed.pair_kind(row.get("url"), row.get("page_url"), row.get("uid"))
        if kind is None and listed.has_image_entries:
            kind = listed.image_kind(row.get("sha256"), row.get("phash"))
        return reason_of(kind) if kind else None

    return verdict


class PurgeFiles(beam.DoFn):
    """One shard in, its purge out, ``(folder, what left which file)``."""

    def __init__(self, listed: OptOutList):
        self.listed = listed
        self._uids: tuple[int, set] | None = None  # the resolved uids as a set, made once

    def process(self, item: tuple[str, str], resolved: dict):
        if self._uids is None or self._uids[0] != id(resolved):
            self._uids = (id(resolved), set(resolved))
        folder, path = item
        # The first pass matched every Parquet row against the list: its uids are all there is.
        result = purge_file(path, verdict_of(self.listed, resolved), self._uids[1])
        Metrics.counter(JOB, FILES).inc()
        relative = path[len(folder.rstrip("/")) + 1 :]
        yield folder, {"file": relative, "rows": result.rows, "removed": result.removed}


class Purge:
    """One run's identity: the list, its digest and the time, named in every record."""

    def __init__(self, list_path: str, text: str, listed: OptOutList):
        self.list_path, self.listed = list_path, listed
        self.digest = hashlib.sha256(text.encode()).hexdigest()
        now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
        self.when = now.isoformat().replace("+00:00", "Z")
        self.record_name = f"purge-{now:%Y%m%dT%H%M%SZ}-{self.digest[:8]}.json"

    def record_folder(self, folder: str, results) -> None:
        """Writes the folder's purge record and updates its stats.json, if anything left."""
        results = [entry for entry in results if entry["removed"]]
        if not results:
            return
        files = [
            {
                "file": entry["file"],
                "rows_before": entry["rows"],
                "removed": dict(Counter(reason for reason, _ in entry["removed"])),
            }
            for entry in results
        ]
        record = purge_record(self.list_path, self.digest, self.listed.entries, self.when, files)
        write_json(FileSystems.join(folder, self.record_name), record)
        if FileSystems.exists(FileSystems.join(folder, STATS_FILE)):
            removed = [pair for entry in results for pair in entry["removed"]]
            stats = updated_stats(read_stats(folder), removed, self.record_name)
            write_json(FileSystems.join(folder, STATS_FILE), stats)


def build(pipeline, purge: Purge, items: list[tuple[str, str]]) -> None:
    files = pipeline | "Files" >> beam.Create(items)
    resolved = (
        files
        | "ParquetOnly" >> beam.Filter(lambda item: format_of(item[1]) == "parquet")
        | "Match" >> beam.FlatMap(lambda item: matches(item[1], purge.listed))
        | "FirstKind" >> beam.CombineGlobally(FirstKind())
    )
    _ = (
        files
        | "Reshuffle" >> beam.Reshuffle()
        | "PurgeFile" >> beam.ParDo(PurgeFiles(purge.listed), beam.pvalue.AsSingleton(resolved))
        | "ByFolder" >> beam.GroupByKey()
        | "Record" >> beam.MapTuple(purge.record_folder)
    )


def execute(args: argparse.Namespace, options) -> dict:
    """Purges every folder; returns {folder: its purge record, or {} when none was needed}."""
    text = read_text(args.list) if FileSystems.exists(args.list) else None
    if text is None:
        raise UsageError(f"--list {args.list}: no such file")
    listed = parse_list(text, f"--list {args.list}")
    folders = [folder.rstrip("/") for folder in args.dirs]
    items = []
    for folder in folders:
        files = folder_files(folder)  # (a gs:// "folder" is only a prefix: look for files)
        if not files and not FileSystems.exists(FileSystems.join(folder, STATS_FILE)):
            raise UsageError(f"{folder}: no shards and no stats.json, not a job's output")
        items += [(folder, path) for path in files]
    purge = Purge(args.list, text, listed)
    pipeline = beam.Pipeline(options=options)
    build(pipeline, purge, items)
    seconds = run_job(
        pipeline,
        Meter(JOB, len(items), " files", lambda c: c.get(FILES, 0)),
        options,
        args.progress_every,
    )
    if seconds is None:
        return {}
    records = {folder: _read_record(folder, purge.record_name) for folder in folders}
    for line in summary_lines(records, len(items), seconds):
        print(line, flush=True)
    return records


def _read_record(folder: str, name: str) -> dict:
    path = FileSystems.join(folder, name)
    if not FileSystems.exists(path):
        return {}
    return json.loads(read_text(path))


def summary_lines(records: dict, files: int, seconds: float) -> list[str]:
    removed = sum(sum(record.get("removed", {}).values()) for record in records.values())
    rewritten = sum(len(record.get("files", [])) for record in records.values())
    lines = [
        f"{JOB}: {files:,} files read in {seconds:.1f} s: {removed:,} rows removed from "
        f"{rewritten:,} files (a record counts in every file that held a copy of it)"
    ]
    for folder, record in records.items():
        if not record:
            lines.append(f"  {folder}: nothing listed, unchanged")
            continue
        reasons = ", ".join(f"{k} {v:,}" for k, v in record["removed"].items())
        lines.append(f"  {folder}: {len(record['files'])} files rewritten ({reasons})")
    return lines
