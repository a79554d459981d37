"""Command-line plumbing shared by the Beam jobs: their common flags, own flags vs Beam's.

The dialect itself (UsageError, exits_cleanly, configs) is filters/cli.py, shared with the
trainer; this module adds what only Beam jobs need.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

from apache_beam.io.filesystems import FileSystems
from apache_beam.options.pipeline_options import PipelineOptions, StandardOptions
from apache_beam.portability.api import beam_provision_api_pb2
from apache_beam.runners.direct.direct_runner import SwitchingDirectRunner
from apache_beam.runners.portability.fn_api_runner import fn_runner
from apache_beam.runners.portability.portable_runner import JobServiceHandle

# What a job runs on when no --runner is given (see LocalRunner).
LOCAL_RUNNER = "pipeline.options.LocalRunner"


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


def read_text(path: str) -> str:
    """A text file through Beam's FileSystems (local or gs://), e.g. a --config file."""
    with FileSystems.open(path) as handle:
        return handle.read().decode("utf-8")


def _beam_option_parser() -> argparse.ArgumentParser:
    """A parser that knows every option of every registered PipelineOptions view."""
    parser = argparse.ArgumentParser(add_help=False)
    pending, seen = [PipelineOptions], set()
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


class LocalRunner(SwitchingDirectRunner):
    """Beam's DirectRunner without its first try on Prism.

    Since Beam 2.6x the DirectRunner first tries the PrismRunner, which downloads a Go
    binary from GitHub at run time (offline it fails and falls back), then runs the Python
    workers in its own process whatever --direct_running_mode says. Our jobs are batch
    jobs the FnApiRunner runs, which is where the DirectRunner falls back to: we go there
    directly, so a laptop with internet runs the same way as CI without it.
    """

    def run_pipeline(self, pipeline, options):
        encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
        provision = fn_runner.ExtendedProvisionInfo(
            beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded)
        )
        return fn_runner.FnApiRunner(provision_info=provision).run_pipeline(pipeline, options)


def parse_job_args(
    parser: argparse.ArgumentParser, argv: Sequence[str] | None
) -> tuple[argparse.Namespace, PipelineOptions]:
    """Splits argv into the job's own flags and Beam's; an unknown flag is a usage error."""
    args, rest = parser.parse_known_args(argv)
    _, unknown = _beam_option_parser().parse_known_args(rest)
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    options = PipelineOptions(rest)
    if options.view_as(StandardOptions).runner is None:
        options.view_as(StandardOptions).runner = LOCAL_RUNNER
    return args, options
