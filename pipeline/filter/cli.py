"""align-filter: ALIGN's text and image rules as one Beam job over pairs or downloaded images.

--rules text   pairs -> pairs that pass the text rules (run before any download)
--rules all    downloaded images -> TFRecord training shards + Parquet sidecars
               (and/or WebDataset tars: --output-format tfrecord,webdataset)
--rules none   downloaded images -> the same shards from every `ok` image (the baseline)

Every record leaves kept or rejected by name (rejects/, measurements/, stats.json).

The command line: flags, their checks, and ``run``. Beam and the pipeline (job.py) are
imported only once the flags are parsed, so ``--help`` and a usage error are instant.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from commandline.flags import (
    UsageError,
    add_config_flags,
    add_output_flags,
    check_at_least,
    exits_cleanly,
)
from filters.config import FilterConfig
from filters.rule import ALL, MODES, TEXT
from filters.table import RULES, config_help
from pipeline.options import MIN_SHARDS, add_sharding_flags, parse_job_args
from pipeline.optout import add_opt_out_flag

OUTPUT_FORMATS = ("tfrecord", "webdataset")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="align-filter", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--input", help="directory of pairs-*/images-*.parquet, a glob, or one Parquet file"
    )
    parser.add_argument("--output", help="output directory (local or gs://)")
    parser.add_argument("--rules", choices=MODES, default=ALL, help=modes_help())
    parser.add_argument(
        "--output-format",
        help="training shards of --rules all/none, comma-separated: tfrecord (Keras trainer), "
        "webdataset (tar shards for PyTorch/open_clip) (default: tfrecord)",
    )
    parser.add_argument(
        "--config", help="YAML overriding ALIGN's thresholds: a file, or 'small' (shipped)"
    )
    parser.add_argument(
        "--eval-images",
        action="append",
        default=[],
        metavar="NAME=GLOB",
        help="an evaluation set whose near-duplicates are dropped (repeatable)",
    )
    parser.add_argument(
        "--nsfw-model", help="NSFW classifier (pipeline/filter/nsfw_scores.py); off by default"
    )
    parser.add_argument("--nsfw-batch-size", type=int, default=32)
    parser.add_argument(
        "--score-model",
        action="append",
        default=[],
        metavar="EXPORT",
        help="align-train export scoring each pair's image and alt-text (--rules all; off by "
        "default); twice, one trained per uid half (align-train --uid-half), to cross-fit",
    )
    parser.add_argument("--score-batch-size", type=int, default=64)
    parser.add_argument(
        "--semantic-dedup",
        action="store_true",
        help="with --score-model: drop images whose embeddings are near-identical to one of a "
        "smaller uid (semantic_dup_cosine), SemDeDup-style",
    )
    add_sharding_flags(
        parser,
        shards_help="output shards per kind (default: one per 256 MB of input images or 64 MB "
        f"of input pairs, at least {MIN_SHARDS}); a shard is sorted in memory before it is "
        "written",
        key_buckets=16,
        key_buckets_help="shuffle buckets of the frequency joins; raise with the data (a "
        "bucket's keys are held together: aim for at most a few million per bucket)",
    )
    parser.add_argument("--batch-rows", type=int, default=65_536, help="records per batch")
    parser.add_argument(
        "--stats",
        nargs="?",
        const=True,
        default=None,
        metavar="DIR",
        help="write the report after the run, or alone: the report of a finished run DIR",
    )
    parser.add_argument(
        "--ground-truth", help="the synthetic web's ground_truth.parquet, for the report's scores"
    )
    add_opt_out_flag(parser)
    add_output_flags(parser)
    config_flags = parser.add_argument_group(
        "config overrides (filters/rules/: the rules' thresholds)"
    )
    add_config_flags(config_flags, FilterConfig, config_help())
    return parser


def modes_help() -> str:
    """Which rules each --rules mode runs, from the rule table."""
    runs = "; ".join(
        f"{mode}: {', '.join(rule.name for rule in RULES if mode in rule.modes)}" for mode in MODES
    )
    return (
        f"which rules run ({runs}); eval_dedup, nsfw, image_text_score, semantic_dedup and "
        "language only when enabled"
    )


def parse_eval_sets(values: list[str]) -> dict[str, str]:
    sets = {}
    for value in values:
        name, sep, pattern = value.partition("=")
        if not sep or not name or not pattern:
            raise UsageError(f"--eval-images wants NAME=GLOB, got {value!r}")
        if name in sets:
            raise UsageError(f"--eval-images: set {name!r} given twice")
        sets[name] = pattern
    return sets


def check_args(args: argparse.Namespace) -> None:
    """What can be checked without reading anything; --stats DIR alone needs no --input."""
    if args.input is None:
        if not isinstance(args.stats, str):
            raise UsageError("--input is required (or --stats DIR alone for a finished run)")
        return
    if not args.output:
        raise UsageError("--output is required")
    check_at_least(
        args, dict.fromkeys(("shards", "batch_rows", "key_buckets", "score_batch_size"), 1)
    )
    if args.semantic_dedup and not args.score_model:
        raise UsageError("--semantic-dedup embeds images with --score-model: give one")
    if len(args.score_model) > 2:
        raise UsageError("--score-model: one export, or two (one per uid half) to cross-fit")
    if isinstance(args.stats, str):
        raise UsageError("--stats takes no directory when --input is given")
    args.eval_sets = parse_eval_sets(args.eval_images)
    args.output_formats = output_formats(args)


def output_formats(args: argparse.Namespace) -> tuple[str, ...]:
    """The --output-format list, checked: TFRecord unless asked otherwise."""
    if args.output_format is None:
        return OUTPUT_FORMATS[:1]
    if args.rules == TEXT:
        raise UsageError("--output-format is for --rules all/none (--rules text writes pairs)")
    formats = tuple(dict.fromkeys(f.strip() for f in args.output_format.split(",") if f.strip()))
    unknown = [name for name in formats if name not in OUTPUT_FORMATS]
    if unknown or not formats:
        raise UsageError(
            f"--output-format {args.output_format!r}: choose from {', '.join(OUTPUT_FORMATS)}"
        )
    return formats


@exits_cleanly("align-filter")
def run(argv: Sequence[str] | None = None) -> dict:
    """Runs the job (or only the report of a finished run: ``--stats DIR``); returns the
    stats document of the run ({} when it only submitted it)."""
    args, options = parse_job_args(build_parser(), argv)
    check_args(args)
    from pipeline.filter import job  # noqa: PLC0415 - Beam's pipeline, after parsing (options.py)

    if args.input is None:
        return job.write_report(args.stats, args.ground_truth)
    return job.execute(args, options)


def main(argv: Sequence[str] | None = None) -> None:
    """The align-filter console script: runs the job; returns None, so success exits 0."""
    run(argv)


if __name__ == "__main__":
    main()
