"""align-ingest: a url+caption list (CSV, TSV, JSON, Parquet) -> pair shards for align-download.

The door to the pipeline for lists people already have (CC3M/CC12M TSVs, LAION/COYO/DataComp
Parquet, a CSV of one's own): a file, a folder or a glob, local or gs://, gzip or not. Its
output is what align-crawl writes: ``pairs-*.parquet`` with stable uids (the same pair has the
same uid whichever job made it), unique, sorted and sharded by uid, each shard one unit of
work for align-download; columns beyond the url and caption (LAION's ``similarity``, ``NSFW``)
ride along as extras to the final shards' sidecars.

Before any work every file's head is read (pipeline/ingest/formats.py) and its url and
caption columns chosen (pipeline/ingest/columns.py: named by --url-col/--caption-col, or the
usual names, or for a list without a header the column of URLs); a list the job cannot read
stops it with one line saying what to pass.

Accounting (``stats.json``): ``in`` counts data rows (not a header, not blank lines); each is
kept, or rejected by its first reason: ``no_url``, ``bad_url``, ``empty_caption``,
``not_utf8``, ``bad_row`` (the format cannot read it) or ``duplicate`` (the same url and
caption on another row: the row with the smallest source is kept). Rows rejected by a rule
(all but duplicates, which are only counted) are in ``rejects/`` with every reason they failed.
"""

from __future__ import annotations

import argparse
import math
import os
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from commandline.flags import UsageError
from pipeline.ingest.clean import DUPLICATE, REJECTS_SCHEMA, VALID, clean, reject_table
from pipeline.ingest.columns import Layout, choose_layout
from pipeline.ingest.formats import (
    Sniffed,
    Unit,
    format_of,
    plain_type,
    plan_units,
    read_unit,
    sniff,
)
from pipeline.ingest.settings import SHARD_ROWS
from pipeline.monitor import Meter, run_job, summary
from pipeline.options import MIN_SHARDS
from pipeline.optout import OptOutList, leave_out, read_list
from pipeline.pairs import keep_first_per_uid
from pipeline.records import PAIR_SCHEMA, make_uid
from pipeline.shards import WriteShards, open_raw, read_text, sized_inputs
from pipeline.stats import (
    IN,
    KEPT,
    SumTallies,
    WriteStats,
    mirror_to_metrics,
    read_stats,
    rejected,
)

REJECTS = "rejects"
TALLIES = "tallies"
JOB = "align-ingest"  # the command, and the namespace of the job's Beam counters
UNIT_BYTES = 32 << 20  # a TSV / JSON-lines file is split into ranges of this many bytes
UNIT_ROWS = 1 << 20  # Parquet row groups are grouped into units of about this many rows


# --- the plan: every file sniffed and its columns chosen, before any work ---------------------


class Plan:
    """The units of work, the pair shards' schema, and what was chosen (for stats.json)."""

    def __init__(self, units: list[Unit], schema: pa.Schema, rows: int, chosen: dict):
        self.units = units
        self.schema = schema
        self.estimated_rows = rows
        self.chosen = chosen


def input_files(spec: str) -> list[tuple[str, int]]:
    """(path, bytes) of the files --input names; a folder's hidden and ``_`` files (Spark's
    _SUCCESS, .crc) are not lists."""
    files = [
        (path, size)
        for path, size in sized_inputs(spec)
        if not path.rsplit("/", 1)[-1].startswith((".", "_"))
        and ("://" in path or not os.path.isdir(path))
    ]
    if not files:
        raise UsageError(f"--input {spec}: no files match")
    return files


def extra_types(sniffed: Sniffed, layout: Layout) -> list[pa.Field]:
    """The extras' fields in the pair shards: Parquet's own types, text for text formats."""
    if sniffed.schema is None:
        return [pa.field(output, pa.string()) for _, output in layout.extras]
    return [
        pa.field(output, plain_type(sniffed.schema.field(name).type))
        for name, output in layout.extras
    ]


def check_text_columns(sniffed: Sniffed, layout: Layout) -> None:
    """A Parquet list's url and caption columns must hold text."""
    if sniffed.schema is None:
        return
    for name, flag in ((layout.url, "--url-col"), (layout.caption, "--caption-col")):
        kind = plain_type(sniffed.schema.field(name).type)
        if kind != pa.string():
            raise UsageError(
                f"--input {sniffed.path}: column {name!r} is {kind}, not text; "
                f"name the text column with {flag}"
            )


def _file_plan(path: str, size: int, args: argparse.Namespace):
    sniffed = sniff(path, format_of(path, args.input_format), args.header, open_raw)
    if set(PAIR_SCHEMA.names) <= set(sniffed.names):
        raise UsageError(
            f"--input {path} holds pair shards already (align-crawl or align-ingest wrote "
            "it): give them to align-filter --rules text or align-download"
        )
    layout = choose_layout(
        f"--input {path}",
        sniffed.names,
        args.url_col,
        args.caption_col,
        args.extra_cols,
        sniffed.first_row,
    )
    check_text_columns(sniffed, layout)
    units = plan_units(sniffed, layout, size, UNIT_BYTES, UNIT_ROWS)
    return sniffed, layout, units, sniffed.estimated_rows(size)


def make_plan(args: argparse.Namespace) -> Plan:
    files = input_files(args.input)
    with ThreadPoolExecutor(max_workers=min(16, len(files))) as pool:
        planned = list(pool.map(lambda item: _file_plan(*item, args), files))
    first_path, first_extras = files[0][0], extra_types(planned[0][0], planned[0][1])
    units, rows = [], 0
    chosen = {"formats": Counter(), "url_col": set(), "caption_col": set()}
    for (path, _), (sniffed, layout, file_units, file_rows) in zip(files, planned, strict=True):
        extras = extra_types(sniffed, layout)
        if extras != first_extras:
            raise UsageError(
                f"--input {path} gives extra columns {_fields(extras)} but {first_path} gives "
                f"{_fields(first_extras)}: ingest them apart, or choose with --extra-cols"
            )
        units += file_units
        rows += file_rows
        chosen["formats"][sniffed.format + ".gz" * sniffed.gzip] += 1
        chosen["url_col"].add(layout.url)
        chosen["caption_col"].add(layout.caption)
    summary = {
        "files": len(files),
        "formats": dict(sorted(chosen["formats"].items())),
        "url_col": sorted(chosen["url_col"]),
        "caption_col": sorted(chosen["caption_col"]),
        "extra_columns": dict((out, name) for name, out in planned[0][1].extras),
    }
    return Plan(units, pa.schema(list(PAIR_SCHEMA) + first_extras), rows, summary)


def _fields(fields: list[pa.Field]) -> str:
    return "(" + ", ".join(f"{f.name}: {f.type}" for f in fields) + ")"


# --- the job --------------------------------------------------------------------------------


def open_input(path: str, gzip: bool):
    """A list file's bytes, gunzipped when it is gzip (by its bytes, not its name)."""
    kind = CompressionTypes.GZIP if gzip else CompressionTypes.UNCOMPRESSED
    return FileSystems.open(path, compression_type=kind)


class ReadUnit(beam.DoFn):
    """One unit of a list in, pair tables out; rejects and a tally per chunk, tagged."""

    def __init__(self, schema: pa.Schema, opt_out: OptOutList | None = None):
        self.schema = schema
        self.opt_out = opt_out

    def process(self, unit: Unit):
        for chunk in read_unit(unit, open_input):
            pairs, rejects, tally = clean(chunk.table, self.schema)
            # --opt-out: counted by kind, never copied to rejects/ (the owner asked us not to)
            pairs, left_out = leave_out(pairs, self.opt_out)
            tally[VALID] -= sum(left_out.values())
            tally.update({rejected(reason): n for reason, n in left_out.items()})
            if chunk.bad:
                sources, reasons, details = zip(*chunk.bad, strict=True)
                unreadable = reject_table(
                    [None] * len(sources),
                    [None] * len(sources),
                    [[reason] for reason in reasons],
                    list(sources),
                    [[detail] for detail in details],
                    uids=[make_uid(s, d) for s, d in zip(sources, details, strict=True)],
                )
                rejects = pa.concat_tables([rejects, unreadable])
                tally[IN] += len(sources)
                tally.update(rejected(reason) for reason in reasons)
            mirror_to_metrics(JOB, tally)
            yield pairs
            yield beam.pvalue.TaggedOutput(REJECTS, rejects)
            yield beam.pvalue.TaggedOutput(TALLIES, dict(tally))


class SortedShards(WriteShards):
    """WriteShards whose rows are ordered by (uid, source), so rows sharing a uid come out in
    the same order on every run; ``unique`` keeps only the first row of each uid."""

    def __init__(self, *args, unique: bool = False, **kwargs):
        super().__init__(*args, **kwargs)
        self.unique = unique

    def shard_table(self, tables) -> pa.Table:
        table = super().shard_table(tables)
        if self.unique:
            return keep_first_per_uid(table)
        return table.sort_by([("uid", "ascending"), ("source", "ascending")])


def count_duplicates(tally: dict) -> dict:
    """Rows that passed the rules but were not kept lost to an equal pair on another row."""
    tally = dict(tally)
    duplicates = tally.pop(VALID, 0) - tally.get(KEPT, 0)
    if duplicates:
        tally[rejected(DUPLICATE)] = duplicates
    return tally


class Ingest(beam.PTransform):
    """Units of a list -> pair shards and rejects under ``output``; outputs the tallies."""

    def __init__(self, plan: Plan, output: str, num_shards: int, opt_out=None):
        super().__init__()
        self.plan = plan
        self.output = output
        self.num_shards = num_shards
        self.opt_out = opt_out

    def expand(self, pipeline):
        read = (
            pipeline
            | "Units" >> beam.Create(self.plan.units)
            | "ReadUnit"
            >> beam.ParDo(ReadUnit(self.plan.schema, self.opt_out)).with_outputs(
                REJECTS, TALLIES, main="pairs"
            )
        )
        written = read.pairs | "WritePairs" >> SortedShards(
            self.output, "pairs", self.plan.schema, self.num_shards, unique=True
        )
        rejects_dir = FileSystems.join(self.output, "rejects")
        read[REJECTS] | "WriteRejects" >> SortedShards(
            rejects_dir, "rejects", REJECTS_SCHEMA, self.num_shards
        )
        kept = written | "CountKept" >> beam.MapTuple(lambda path, rows: {KEPT: rows})
        return (read[TALLIES], kept) | "AllTallies" >> beam.Flatten()


def execute(args: argparse.Namespace, options) -> dict:
    """The job, its flags parsed and checked (cli.py): returns the stats document it wrote,
    or {} when it only submitted the job (Dataflow without waiting, or a template)."""
    plan = make_plan(args)
    opt_out = read_list(args.opt_out, read_text) if args.opt_out else None
    shards = args.shards or max(MIN_SHARDS, math.ceil(plan.estimated_rows / SHARD_ROWS))
    if not FileSystems.exists(args.output):
        FileSystems.mkdirs(args.output)
    extra = {"job": JOB, "unit": "rows", "input": args.input, "shards": shards}
    extra.update(plan.chosen)
    pipeline = beam.Pipeline(options=options)
    _ = (
        pipeline
        | "Ingest" >> Ingest(plan, args.output, shards, opt_out)
        | "SumTallies" >> beam.CombineGlobally(SumTallies())
        | "CountDuplicates" >> beam.Map(count_duplicates)
        | "WriteStats" >> WriteStats(args.output, extra)
    )
    meter = Meter(JOB, plan.estimated_rows or None, " rows")
    seconds = run_job(pipeline, meter, options, args.progress_every)
    if seconds is None:
        return {}
    stats = read_stats(args.output)
    output = f"{args.output}: {shards} shards pairs-*.parquet ({stats['kept']:,} unique pairs)"
    print(summary(JOB, stats, seconds, [output], unit="rows"), flush=True)
    return stats
