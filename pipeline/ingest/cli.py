"""align-ingest: a url+caption list (CSV, TSV, JSON, Parquet) -> pair shards for align-download.

The command line: flags, their checks, and ``run``. Beam and the pipeline (job.py) are
imported only once the flags are parsed, so ``--help`` and a usage error are instant.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from filters.cli import add_output_flags, check_at_least, exits_cleanly
from pipeline.ingest.columns import ALL, FORMATS
from pipeline.options import MIN_SHARDS, add_sharding_flags, parse_job_args

INPUT_FORMATS = ("auto", *FORMATS, *(f"{name}.gz" for name in FORMATS if name != "parquet"))
# Output shards when --shards is not given: about this many rows each (img2dataset writes
# 10k; more rows per shard means fewer scratch pieces as lists grow), at least MIN_SHARDS.
SHARD_ROWS = 25_000


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="align-ingest", description=__doc__.split("\n")[0])
    parser.add_argument("--input", required=True, help="a list file, a folder or a glob")
    parser.add_argument("--output", required=True, help="folder for pairs-*.parquet")
    parser.add_argument(
        "--input-format",
        "--input_format",
        dest="input_format",
        default="auto",
        choices=INPUT_FORMATS,
        help="by the file name when auto; gzip is recognised by its bytes (default: auto)",
    )
    parser.add_argument(
        "--url-col", "--url_col", dest="url_col", help="the URL column: a name or 0-based position"
    )
    parser.add_argument(
        "--caption-col",
        "--caption_col",
        dest="caption_col",
        help="the caption column: a name or 0-based position",
    )
    parser.add_argument(
        "--extra-cols",
        "--save_additional_columns",
        dest="extra_cols",
        default=ALL,
        help="columns kept beside url and caption: all, none, or a comma-separated list "
        "(default: all)",
    )
    parser.add_argument(
        "--header",
        choices=("auto", "yes", "no"),
        default="auto",
        help="CSV/TSV first line: a header unless it holds a URL, when auto (default: auto)",
    )
    add_sharding_flags(
        parser,
        shards_help=f"pair shards (default: about {SHARD_ROWS:,} rows each, at least "
        f"{MIN_SHARDS}); each is one unit of align-download's work",
    )
    add_output_flags(parser)
    return parser


def extra_cols(value: str) -> str:
    """img2dataset's ``["similarity","hash"]`` as ``similarity,hash``."""
    value = value.strip()
    if value.startswith("["):
        names = [part.strip().strip("'\"") for part in value.strip("[]").split(",")]
        return ",".join(name for name in names if name) or "none"
    return value


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
