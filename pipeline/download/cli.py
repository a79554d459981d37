"""align-download: pair shards -> image shards, fetched politely by host (caps for the whole job).

The command line: flags, their checks, and ``run``. Beam and the pipeline (job.py) are
imported only once the flags are parsed, so ``--help`` and a usage error are instant.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from commandline.flags import add_output_flags, exits_cleanly
from pipeline.download.settings import (
    add_archive_flags,
    add_image_flags,
    add_plan_flags,
    check_archive_flags,
    check_image_flags,
    check_plan_flags,
)
from pipeline.fetch.settings import add_fetch_flags, check_fetch_flags
from pipeline.options import parse_job_args
from pipeline.optout import add_opt_out_flag


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="align-download",
        description=__doc__.split("\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "--input", required=True, help="directory of pairs-*.parquet, a glob, or one file"
    )
    parser.add_argument("--output", required=True, help="directory for images-*.parquet")
    add_image_flags(parser)
    add_plan_flags(parser)
    add_opt_out_flag(parser)
    add_archive_flags(parser)
    add_fetch_flags(parser)
    add_output_flags(parser)
    return parser


def check_args(args: argparse.Namespace) -> None:
    check_image_flags(args)
    check_plan_flags(args)
    check_archive_flags(args)
    check_fetch_flags(args)


@exits_cleanly("align-download")
def run(argv: Sequence[str] | None = None) -> dict:
    """Runs the job; returns the stats document it wrote ({} when it only submitted it)."""
    args, options = parse_job_args(build_parser(), argv)
    check_args(args)
    from pipeline.download import job  # noqa: PLC0415 - Beam's pipeline, after parsing (options.py)

    return job.execute(args, options)


def main(argv: Sequence[str] | None = None) -> None:
    """The align-download console script: runs the job; returns None, so success exits 0."""
    run(argv)


if __name__ == "__main__":
    main()
