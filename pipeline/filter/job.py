"""align-filter's pipeline: read | Filter | write, ALIGN's rules as one Beam job.

The modes and flags are cli.py's. Every record leaves kept or rejected by name (rejects/,
measurements/, stats.json).
"""

from __future__ import annotations

import argparse
import functools

import apache_beam as beam
import pyarrow as pa
from apache_beam.io.filesystems import FileSystems

from commandline.flags import UsageError
from commandline.flags import overrides_from as config_overrides
from filters.config import FilterConfig, load_config
from filters.rule import (
    ALL,
    DISTINCT_COUNT,
    EVAL_JOIN,
    EVAL_SETS,
    LANGUAGES,
    MODEL_SCORE,
    NGRAM_RANK,
    NONE,
    NSFW_MODEL,
    PAIR_SCORE,
    SCORE_MODEL,
    SEMANTIC_DEDUP,
    TEXT,
    Rule,
)
from filters.table import rules_for
from pipeline.filter import measure
from pipeline.filter.apply import (
    MEASUREMENT_SCHEMA,
    MEASUREMENTS,
    REJECT_OUTPUT_SCHEMA,
    REJECTS,
    TALLIES,
    ApplyRules,
    SpillScores,
)
from pipeline.filter.counts import DistinctCountRule, RareTokens
from pipeline.filter.evaldedup import EvalDedup, list_images
from pipeline.filter.nsfw_scores import NsfwScores
from pipeline.filter.score import ScoreRule, ScoreSettings, settings_for
from pipeline.filter.tfrecord import write_tfrecord
from pipeline.filter.webdataset import write_webdataset
from pipeline.monitor import Meter, judged, run_job, summary
from pipeline.options import MIN_SHARDS
from pipeline.optout import leave_out, read_list
from pipeline.records import DOWNLOAD_SCHEMA, DOWNLOADED, PAIR_SCHEMA, PAIRS, with_extras
from pipeline.report.writer import write_report as draw_report
from pipeline.shards import (
    ReadTables,
    WriteShards,
    check_input,
    match_files,
    match_shards,
    read_text,
    remove_folder,
    total_rows,
    write_parquet,
)
from pipeline.stats import IN, WriteStats, read_stats, rejected

JOB = "align-filter"  # the command, and the namespace of the job's Beam counters

SIDECAR_SCHEMA = pa.schema(
    [f for f in DOWNLOAD_SCHEMA if f.name not in ("image", "status", "error")]
)
INPUT_PREFIXES = {TEXT: ("pairs", "images"), ALL: ("images",), NONE: ("images",)}
CONTRACTS = {TEXT: PAIRS, ALL: DOWNLOADED, NONE: DOWNLOADED}
# Input bytes per output shard when --shards is not given. A shard's rows are sorted in one
# worker's memory; JPEG bytes stay their size there, Parquet pairs grow ~4x when decoded.
SHARD_INPUT_BYTES = {TEXT: 64 << 20, ALL: 256 << 20, NONE: 256 << 20}


def resolve_input(path: str, mode: str) -> tuple[str, pa.Schema]:
    """The input's pattern (a folder means its pairs-*.parquet (text) or images-*.parquet;
    else a glob or one file) and its schema, checked at the door (pipeline/records.py)."""
    what = "pair or image shards" if mode == TEXT else "image shards"
    try:
        pattern, paths = match_shards(path, INPUT_PREFIXES[mode], what)
    except FileNotFoundError:
        if mode != TEXT and match_files(FileSystems.join(path, "pairs-*.parquet")):
            raise UsageError(
                f"--input {path} holds pair shards, not downloaded images: run align-download "
                "on them first"
            ) from None
        raise
    return pattern, check_input(paths, CONTRACTS[mode])


def default_shards(pattern: str, mode: str) -> int:
    """Output shards for an input: sized by its bytes (the glob's listing gives them free),
    so 10x the data is 10x the shards and a shard's memory stays the same."""
    listed = FileSystems.match([pattern])[0].metadata_list
    size = sum(metadata.size_in_bytes for metadata in listed)
    return max(MIN_SHARDS, -(-size // SHARD_INPUT_BYTES[mode]))


def effective_config(args: argparse.Namespace) -> FilterConfig:
    """ALIGN's defaults, then --config (local or gs://), then each key given as a flag."""
    return load_config(args.config, config_overrides(args, FilterConfig), read_text)


def _sorted_write(writer, table: pa.Table, path: str) -> None:
    """Orders rows sharing a uid by page and source too, so reruns give the same bytes."""
    keys = [name for name in ("uid", "page_url", "source") if name in table.column_names]
    writer(table.sort_by([(name, "ascending") for name in keys]), path)


def _writer(writer=write_parquet):
    return functools.partial(_sorted_write, writer)


def _nsfw_scores(images, model_path: str, batch_size: int, scratch: str):
    """Scores keyed by their route, written to scratch files: ``(batch_id, ref)``."""
    return (
        images
        | "NsfwScores" >> NsfwScores(model_path, batch_size, key=measure.ROUTE)
        | "SpillScores" >> beam.ParDo(SpillScores(scratch))
    )


def scratch_folder(output_dir: str) -> str:
    """Where batches, partial counts and flags wait between steps; removed at the end."""
    return FileSystems.join(output_dir, "_scratch")


def step_label(rule: Rule) -> str:
    """A rule's step in the graph: images_per_alt -> ImagesPerAlt."""
    return "".join(word.capitalize() for word in rule.name.split("_"))


class Filter(beam.PTransform):
    """Tables of records -> {"kept", "rejects", "measurements", "tallies"}: Measure | one join
    per rule that needs the whole input | ApplyRules.

    The rules, their order and their stages come from the rule table (filters/table.py).
    Batches and partial counts wait in ``scratch`` between the steps.
    """

    def __init__(
        self,
        rules: list[Rule],
        config: FilterConfig,
        kept_schema: pa.Schema,
        scratch: str,
        batch_rows: int = 65_536,
        key_buckets: int = 16,
        eval_sets: dict[str, str] | None = None,
        nsfw_model: str | None = None,
        nsfw_batch_size: int = 32,
        score: ScoreSettings | None = None,
    ):
        super().__init__()
        self.score = score
        self.rules, self.config, self.kept_schema = rules, config, kept_schema
        self.scratch, self.batch_rows, self.key_buckets = scratch, batch_rows, key_buckets
        self.eval_sets = eval_sets or {}
        self.nsfw_model, self.nsfw_batch_size = nsfw_model, nsfw_batch_size

    def expand(self, tables):
        rules, config = self.rules, self.config
        measured = tables | "Measure" >> beam.ParDo(
            measure.MeasureBatch(rules, config, self.batch_rows, self.key_buckets, self.scratch)
        ).with_outputs(*measure.partial_tags(rules), measure.TALLIES, main="batches")
        joined, tallies = self._joins(tables.pipeline, measured)
        results = (
            joined
            | "JoinBatches" >> beam.CoGroupByKey()
            | "ApplyRules"
            >> beam.ParDo(ApplyRules(rules, config, self.kept_schema)).with_outputs(
                REJECTS, MEASUREMENTS, TALLIES, main="kept"
            )
        )
        tallies.append(results[TALLIES])
        return {
            "kept": results.kept,
            "rejects": results[REJECTS],
            "measurements": results[MEASUREMENTS],
            "tallies": tallies | "AllTallies" >> beam.Flatten(),
        }

    def _joins(self, pipeline, measured) -> tuple[dict, list]:
        """The batches, with the flags (and scores) of every rule that needs the whole input."""
        flags = [pipeline | "NoFlags" >> beam.Create([])]
        tallies = [measured[measure.TALLIES]]
        joined = {"batch": measured.batches}
        for rule in self.rules:
            if rule.stage not in measure.PARTIAL_STAGES:
                continue  # judged record by record in ApplyRules
            params = [getattr(self.config, key) for key in rule.config_keys]
            partials, label = measured[rule.name], step_label(rule)
            if rule.stage == DISTINCT_COUNT:
                check = DistinctCountRule(params[0], rule.check, self.scratch)
                flags.append(partials | label >> check)
            elif rule.stage == NGRAM_RANK:
                flags.append(partials | label >> RareTokens(*params, self.scratch))
            elif rule.stage == EVAL_JOIN:
                dedup = EvalDedup(self.eval_sets, params[0], self.key_buckets)
                flags.append(partials | label >> dedup)
                tallies.append(dedup.tallies)
            elif rule.stage == MODEL_SCORE:
                joined["scores"] = _nsfw_scores(
                    partials, self.nsfw_model, self.nsfw_batch_size, self.scratch
                )
            elif rule.stage == PAIR_SCORE:
                dedup = [r for r in self.rules if r.needs == SEMANTIC_DEDUP]
                cosine = getattr(self.config, dedup[0].config_keys[0]) if dedup else None
                flags.append(partials | label >> ScoreRule(self.score, *params, cosine))
        joined["flags"] = flags | "AllFlags" >> beam.Flatten()
        return joined, tallies


def build(
    pipeline, args, config, pattern: str, eval_sets: dict[str, str], schema: pa.Schema
) -> None:
    """Read | Filter | write the outputs and stats.json; ``schema`` is the input's, whose
    extras (columns outside the contract) every output carries."""
    mode = args.rules
    nsfw = bool(args.nsfw_model) and mode == ALL
    use_eval = bool(eval_sets) and mode == ALL
    score = None
    if mode == ALL and args.score_model:
        score = settings_for(args.score_model, args.score_batch_size, args.semantic_dedup)
    given = {
        EVAL_SETS: use_eval,
        NSFW_MODEL: nsfw,
        SCORE_MODEL: score is not None,
        SEMANTIC_DEDUP: score is not None and args.semantic_dedup,
        LANGUAGES: bool(config.languages),
    }
    rules = rules_for(mode, [name for name, on in given.items() if on])
    kept_schema = with_extras(PAIR_SCHEMA if mode == TEXT else DOWNLOAD_SCHEMA, schema)
    job = Filter(
        rules,
        config,
        kept_schema,
        scratch_folder(args.output),
        args.batch_rows,
        args.key_buckets,
        eval_sets,
        args.nsfw_model,
        args.nsfw_batch_size,
        score,
    )
    tables = pipeline | "Read" >> ReadTables(pattern)
    tallies = []
    if args.opt_out:
        screened = tables | "OptOut" >> beam.ParDo(
            LeaveOut(read_list(args.opt_out, read_text))
        ).with_outputs(TALLIES, main="tables")
        tables = screened.tables
        tallies.append(screened[TALLIES])
    results = tables | "Filter" >> job
    _write_outputs(results, args, kept_schema)
    extra = {
        "job": "align-filter",
        "mode": mode,
        "rules": [rule.name for rule in rules],
        "config": config.to_dict(),
        "input": pattern,
        "shards": args.shards,
        "nsfw_applied": nsfw,
        "nsfw_model": args.nsfw_model if nsfw else None,
        "score_models": list(score.exports) if score else [],
        "score_trained_halves": list(score.trained_halves) if score else [],
        "eval_sets": {name: len(list_images(glob)) for name, glob in eval_sets.items()},
    }
    all_tallies = [results["tallies"], *tallies] | "WithOptOut" >> beam.Flatten()
    all_tallies | "WriteStats" >> WriteStats(args.output, extra)


class LeaveOut(beam.DoFn):
    """--opt-out: drops the listed records before any rule sees them, counted (in, and
    rejected by kind) but never written to rejects/: the owner asked for them to be gone."""

    def __init__(self, listed):
        self.listed = listed

    def process(self, table: pa.Table):
        table, dropped = leave_out(table, self.listed)
        if dropped:
            tally = {rejected(reason): n for reason, n in dropped.items()}
            tally[IN] = sum(dropped.values())
            yield beam.pvalue.TaggedOutput(TALLIES, tally)
        if table.num_rows:
            yield table


def _write_outputs(results: dict, args, kept_schema: pa.Schema) -> None:
    out, shards = args.output, args.shards
    if args.rules == TEXT:
        results["kept"] | "WritePairs" >> WriteShards(
            out, "pairs", kept_schema, shards, writer=_writer()
        )
    else:
        shard_dir = FileSystems.join(out, "shards")
        sidecar = with_extras(SIDECAR_SCHEMA, kept_schema)
        if "tfrecord" in args.output_formats:
            results["kept"] | "WriteTFRecords" >> WriteShards(
                shard_dir, "align", kept_schema, shards, _writer(write_tfrecord), ".tfrecord"
            )
        if "webdataset" in args.output_formats:
            tar = functools.partial(write_webdataset, columns=sidecar.names)
            results["kept"] | "WriteWebDataset" >> WriteShards(
                shard_dir, "align", kept_schema, shards, _writer(tar), ".tar"
            )
        (
            results["kept"]
            | "SidecarColumns" >> beam.Map(lambda t: t.select(sidecar.names))
            | "WriteSidecars" >> WriteShards(shard_dir, "align", sidecar, shards, writer=_writer())
        )
    results["rejects"] | "WriteRejects" >> WriteShards(
        FileSystems.join(out, "rejects"), "rejects", REJECT_OUTPUT_SCHEMA, shards, _writer()
    )
    results["measurements"] | "WriteMeasurements" >> WriteShards(
        FileSystems.join(out, "measurements"),
        "measurements",
        MEASUREMENT_SCHEMA,
        shards,
        _writer(),
    )


def write_report(output_dir: str, ground_truth: str | None = None) -> dict:
    """--stats: the report of the run (pipeline/report, beside this job)."""
    if not FileSystems.exists(FileSystems.join(output_dir, "stats.json")):
        raise FileNotFoundError(f"--stats {output_dir}: no stats.json (not a finished run)")
    draw_report(output_dir, ground_truth)
    return read_stats(output_dir)


def execute(args: argparse.Namespace, options) -> dict:
    """The job, its flags parsed and checked (cli.py): returns the stats document it wrote,
    or {} when it only submitted the job (Dataflow without waiting, or a template)."""
    config = effective_config(args)
    eval_sets = args.eval_sets  # parsed by cli.check_args
    for name, glob in eval_sets.items():
        if not list_images(glob):
            raise UsageError(f"--eval-images {name}: no files match {glob}")
    pattern, schema = resolve_input(args.input, args.rules)
    if args.shards is None:
        args.shards = default_shards(pattern, args.rules)
    pipeline = beam.Pipeline(options=options)
    build(pipeline, args, config, pattern, eval_sets, schema)
    inputs = [m.path for m in FileSystems.match([pattern])[0].metadata_list]
    meter = Meter(JOB, total_rows(inputs), " records", judged)
    seconds = run_job(pipeline, meter, options, args.progress_every)
    if seconds is None:
        return {}
    remove_folder(scratch_folder(args.output))
    if args.stats:
        write_report(args.output, args.ground_truth)
    stats = read_stats(args.output)
    print(summary(JOB, stats, seconds, outputs_of(args)), flush=True)
    return stats


def outputs_of(args: argparse.Namespace) -> list[str]:
    """Where a finished run's outputs are, for its summary."""
    out, shards = args.output, args.shards
    if args.rules == TEXT:
        kept = f"{out}: {shards} shards pairs-*.parquet (the pairs kept)"
    else:
        kept = f"{FileSystems.join(out, 'shards')}: {shards} shards align-*.tfrecord + .parquet"
    beside = "rejects/, measurements/, stats.json" + (", report/report.html" if args.stats else "")
    return [kept, f"{out}: {beside}"]
