"""Command-line plumbing shared by the Beam jobs: their common flags, own flags vs Beam's.

The dialect itself (UsageError, exits_cleanly, configs, -v) is filters/cli.py, shared with
the trainer; this module adds what only Beam jobs need. It imports no Beam at the top: a
job's command line (``--help``, a usage error) is answered before Beam is imported.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from filters.cli import UsageError, quiet_frameworks

# What a job runs on when no --runner is given (pipeline/runner.py).
LOCAL_RUNNER = "pipeline.runner.LocalRunner"
MIN_SHARDS = 4  # output shards, at least, when a job sizes them from its input
# The crawl's dedup buckets per GB of WARC (~20k pairs a bucket, as many as one harvested
# table), and their cap: every harvested table is split into a part per bucket and every
# bucket opens every table's file, so too many buckets for the input cost more than the dedup
# itself (1.1 s more on 1 GB with 256). Past the cap, raise --key-buckets with the crawl.
MIN_DEDUP_BUCKETS = 16
MAX_DEDUP_BUCKETS = 256


def add_sharding_flags(
    parser: argparse.ArgumentParser,
    shards_help: str,
    key_buckets_help: str | None = None,
    key_buckets: int | None = None,
) -> None:
    """``--shards`` (output shards) and ``--key-buckets`` (the buckets a keyed shuffle is
    split into; offered when ``key_buckets_help`` is given, default ``key_buckets``), the same
    names in every job; crawl's old names stay as aliases."""
    parser.add_argument("--shards", "--num-shards", dest="shards", type=int, help=shards_help)
    if key_buckets_help is None:
        return
    parser.add_argument(
        "--key-buckets",
        "--dedup-buckets",
        dest="key_buckets",
        type=int,
        default=key_buckets,
        help=key_buckets_help,
    )


def _beam_option_parser(pipeline_options) -> argparse.ArgumentParser:
    """A parser that knows every option of every registered PipelineOptions view."""
    parser = argparse.ArgumentParser(add_help=False)
    pending, seen = [pipeline_options], set()
    while pending:
        view = pending.pop()
        if view in seen:
            continue
        seen.add(view)
        pending.extend(view.__subclasses__())
        try:
            view._add_argparse_args(parser)
        except argparse.ArgumentError:
            pass  # two views declaring the same flag: the first one is enough here
    return parser


def parse_job_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None):
    """Splits argv into the job's own flags and Beam's ``PipelineOptions``; an unknown flag
    is a usage error. ``--help`` and the job's own usage errors are answered before Beam is
    imported; then the frameworks' logs are quieted (unless ``-v``)."""
    args, rest = parser.parse_known_args(argv)
    quiet_frameworks(getattr(args, "verbose", False))
    # Beam takes ~1.5 s to import (python -X importtime -c "import apache_beam", quiet
    # machine), ten times a job's whole --help: it is imported once the flags are parsed.
    from apache_beam.options.pipeline_options import (  # noqa: PLC0415 - see above
        PipelineOptions,
        StandardOptions,
    )

    _, unknown = _beam_option_parser(PipelineOptions).parse_known_args(rest)
    if unknown:
        raise UsageError(f"unrecognized arguments: {' '.join(unknown)}")
    options = PipelineOptions(rest)
    if options.view_as(StandardOptions).runner is None:
        options.view_as(StandardOptions).runner = LOCAL_RUNNER
    return args, options
