"""align-purge: removes listed records from every stage's existing outputs, after the fact.

The command line: flags, their checks, and ``run``. Beam and the pipeline (job.py) are
imported only once the flags are parsed, so ``--help`` and a usage error are instant.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from commandline.flags import add_output_flags, exits_cleanly
from pipeline.options import parse_job_args


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="align-purge", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--list",
        required=True,
        metavar="FILE",
        help="records to remove, one 'kind:value' a line: url:, prefix:, domain:, page:, uid:, "
        "sha256:, phash:HEX[/distance] (local or gs://)",
    )
    parser.add_argument(
        "dirs",
        nargs="+",
        metavar="DIR",
        help="output folders of any stage (crawl, ingest, filter, download), local or gs://; "
        "image hashes are resolved to pairs across all of them",
    )
    add_output_flags(parser)
    return parser


@exits_cleanly("align-purge")
def run(argv: Sequence[str] | None = None) -> dict:
    """Runs the purge; returns {folder: its purge record} (empty records: nothing removed)."""
    args, options = parse_job_args(build_parser(), argv)
    from pipeline.purge import job  # noqa: PLC0415 - Beam's pipeline, after parsing (options.py)

    return job.execute(args, options)


def main(argv: Sequence[str] | None = None) -> None:
    """The align-purge console script: runs the purge; returns None, so success exits 0."""
    run(argv)


if __name__ == "__main__":
    main()
