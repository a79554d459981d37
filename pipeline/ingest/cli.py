"""align-ingest: a url+caption list (CSV, TSV, JSON, Parquet) -> pair shards for align-download.

The command line: flags, their checks, and ``run``. Beam and the pipeline (job.py) are
imported only once the flags are parsed, so ``--help`` and a usage error are instant.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from commandline.flags import add_output_flags, check_at_least, exits_cleanly
from pipeline.ingest.settings import SHARD_ROWS, add_list_flags, extra_cols
from pipeline.options import MIN_SHARDS, add_sharding_flags, parse_job_args
from pipeline.optout import add_opt_out_flag


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="align-ingest", description=__doc__.split("\n")[0])
    parser.add_argument("--input", required=True, help="a list file, a folder or a glob")
    parser.add_argument("--output", required=True, help="folder for pairs-*.parquet")
    add_list_flags(parser)
    add_opt_out_flag(parser)
    add_sharding_flags(
        parser,
        shards_help=f"pair shards (default: about {SHARD_ROWS:,} rows each, at least "
        f"{MIN_SHARDS}); each is one unit of align-download's work",
    )
    add_output_flags(parser)
    return parser


@exits_cleanly("align-ingest")
def run(argv: Sequence[str] | None = None) -> dict:
    """Runs the job; returns the stats document it wrote ({} when it only submitted it)."""
    args, options = parse_job_args(build_parser(), argv)
    check_at_least(args, {"shards": 1})
    args.extra_cols = extra_cols(args.extra_cols)
    from pipeline.ingest import job  # noqa: PLC0415 - Beam's pipeline, after parsing (options.py)

    return job.execute(args, options)


def main(argv: Sequence[str] | None = None) -> None:
    """The align-ingest console script: runs the job; returns None, so success exits 0."""
    run(argv)


if __name__ == "__main__":
    main()
