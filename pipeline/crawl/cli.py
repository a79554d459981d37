"""align-crawl: WARC/WAT files or a list of page URLs -> deduplicated (image URL, alt) pairs.

The command line: flags, their checks, and ``run``. Beam and the pipeline (job.py) are
imported only once the flags are parsed, so ``--help`` and a usage error are instant.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from commandline.flags import add_output_flags, check_at_least, exits_cleanly
from pipeline.crawl.harvest import HarvestOptions
from pipeline.fetch.settings import add_fetch_flags, fetch_config
from pipeline.options import (
    MAX_DEDUP_BUCKETS,
    MIN_DEDUP_BUCKETS,
    MIN_SHARDS,
    add_sharding_flags,
    parse_job_args,
)
from pipeline.optout import add_opt_out_flag

FORMATS = ("auto", "warc", "wat")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="align-crawl", description=__doc__.split("\n")[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", help="glob (or folder) of WARC/ARC/WAT files, local or gs://")
    source.add_argument("--page-urls", help="file of page URLs to fetch, one per line")
    parser.add_argument("--output", required=True, help="output folder")
    parser.add_argument(
        "--format",
        default="auto",
        choices=FORMATS,
        help="input file format (warc also reads ARC files, told apart by content)",
    )
    add_sharding_flags(
        parser,
        shards_help=f"output Parquet shards (default: sized by the input, at least {MIN_SHARDS}: "
        "one per GB of WARC, 128 MB of WAT or 50k page URLs, each ~50 MB of pairs)",
        key_buckets_help=f"dedup partitions (default: sized by the input, {MIN_DEDUP_BUCKETS} per "
        f"GB of WARC, at most {MAX_DEDUP_BUCKETS}: ~20k pairs each)",
    )
    parser.add_argument("--max-page-bytes", type=int, default=HarvestOptions.max_page_bytes)
    parser.add_argument(
        "--include-empty-alt", action="store_true", help="also emit images with no alt-text"
    )
    parser.add_argument(
        "--fetch-batch-size",
        type=int,
        default=32,
        help="pages per fetch call (a host's pages always share one call)",
    )
    add_opt_out_flag(parser)
    add_fetch_flags(parser)
    add_output_flags(parser)
    return parser


def check_args(args: argparse.Namespace) -> None:
    flags = ("shards", "key_buckets", "max_page_bytes", "fetch_batch_size")
    check_at_least(args, dict.fromkeys(flags, 1))
    fetch_config(args)  # checks the fetcher's flags before any work


@exits_cleanly("align-crawl")
def run(argv: Sequence[str] | None = None) -> dict:
    """Runs the job; returns the stats document it wrote ({} when it only submitted it)."""
    args, options = parse_job_args(build_parser(), argv)
    check_args(args)
    from pipeline.crawl import job  # noqa: PLC0415 - Beam's pipeline, after parsing (options.py)

    return job.execute(args, options)


def main(argv: Sequence[str] | None = None) -> None:
    """The align-crawl console script: runs the job; returns None, so success exits 0."""
    run(argv)


if __name__ == "__main__":
    main()
