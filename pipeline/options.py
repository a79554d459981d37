"""Command-line plumbing shared by the Beam jobs: their common flags, own flags vs Beam's.

The dialect itself (UsageError, exits_cleanly, configs, -v) is commandline/flags.py, shared with
the trainer; this module adds what only Beam jobs need. It imports no Beam at the top: a
job's command line (``--help``, a usage error) is answered before Beam is imported.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from commandline.flags import UsageError, quiet_frameworks
from pipeline.workers import default_workers

# What a job runs on when no --runner is given (pipeline/runner.py).
LOCAL_RUNNER = "pipeline.runner.LocalRunner"
LOCAL_RUNNERS = {"LocalRunner", "DirectRunner", "SwitchingDirectRunner", "FnApiRunner"}
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


def add_workers_flag(parser: argparse.ArgumentParser) -> None:
    """``--workers N``: local worker processes (every job has it; parse_job_args adds it)."""
    if any("--workers" in action.option_strings for action in parser._actions):
        return
    parser.add_argument(
        "--workers",
        type=int,
        help="local worker processes (default: one per usable core, as many as memory "
        "holds); Beam's --direct_num_workers/--direct_running_mode win when given; on "
        "Dataflow use --max_num_workers",
    )


def parse_job_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None):
    """Splits argv into the job's own flags and Beam's ``PipelineOptions``; an unknown flag
    is a usage error. ``--help`` and the job's own usage errors are answered before Beam is
    imported; then the frameworks' logs are quieted (unless ``-v``). Every job gets
    ``--workers`` here (``local_workers``)."""
    add_workers_flag(parser)
    args, rest = parser.parse_known_args(argv)
    if args.workers is not None and args.workers < 1:
        raise UsageError(f"--workers must be at least 1, got {args.workers}")
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
    local_workers(options, args.workers)
    return args, options


def is_local(runner) -> bool:
    """The runners that run on this machine: ours, Beam's DirectRunner and its FnApiRunner."""
    name = runner if isinstance(runner, str) else type(runner).__name__
    return name.split(".")[-1] in LOCAL_RUNNERS


def local_workers(options, workers: int | None) -> None:
    """Sets the local runner's worker processes: ``workers``, or one per usable core as
    memory allows (pipeline/workers.py). Beam's own --direct_num_workers or
    --direct_running_mode, when given, are used as given. Off this machine --workers means
    nothing, and is refused rather than ignored."""
    from apache_beam.options.pipeline_options import (  # noqa: PLC0415 - after parsing
        DirectOptions,
        StandardOptions,
    )

    runner = options.view_as(StandardOptions).runner
    if not is_local(runner):
        if workers is not None:
            dataflow = "Dataflow" in str(runner)
            hint = "--max_num_workers (and --num_workers)" if dataflow else "its own flags"
            raise UsageError(f"--workers counts local processes; on {runner} use {hint}")
        return
    given = options.get_all_options(drop_default=True)
    if "direct_num_workers" in given or "direct_running_mode" in given:
        return
    count = workers if workers is not None else default_workers()
    direct = options.view_as(DirectOptions)
    direct.direct_num_workers = count
    # One worker stays in this process (no start-up of a second interpreter); more are
    # processes, each with its own GIL. Both answer progress requests while they work.
    direct.direct_running_mode = "multi_processing" if count > 1 else "multi_threading"
