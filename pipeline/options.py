"""Command-line plumbing shared by the Beam jobs: own flags vs Beam's, one-line errors."""

from __future__ import annotations

import argparse
import functools
import sys
from collections.abc import Callable, Sequence

from apache_beam.options.pipeline_options import PipelineOptions


class UsageError(ValueError):
    """A bad flag, path or config value: reported in one line, never as a traceback."""


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


def parse_job_args(
    parser: argparse.ArgumentParser, argv: Sequence[str] | None
) -> tuple[argparse.Namespace, PipelineOptions]:
    """Splits argv into the job's own flags and Beam's; an unknown flag is a usage error."""
    args, rest = parser.parse_known_args(argv)
    _, unknown = _beam_option_parser().parse_known_args(rest)
    if unknown:
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    return args, PipelineOptions(rest)


def exits_cleanly(prog: str) -> Callable:
    """Turns UsageError (and a missing input) into ``prog: error: message`` and exit 2."""

    def decorate(run: Callable) -> Callable:
        @functools.wraps(run)
        def wrapper(*args, **kwargs):
            try:
                return run(*args, **kwargs)
            except (UsageError, FileNotFoundError) as error:
                print(f"{prog}: error: {error}", file=sys.stderr)
                raise SystemExit(2) from None

        return wrapper

    return decorate
