"""The fetcher's settings as command-line flags, declared once for every job that fetches.

align-crawl (``--page-urls``) and align-download take the same flags with the same defaults
(FetchConfig's); a job sets what is its own choice, not the user's, such as ``Accept``.
"""

from __future__ import annotations

import argparse
import dataclasses

from commandline.flags import UsageError
from pipeline.fetch.fetcher import FetchConfig
from pipeline.fetch.units import DEFAULT_UNIT, UNITS

# FetchConfig field -> help. Politeness (robots.txt, X-Robots-Tag) and TLS checks are not
# offered as flags: they are not the user's to turn off.
FLAGS = {
    "threads": "requests in flight per worker",
    "per_host_concurrency": "connections per host, for the whole job (every worker together)",
    "per_host_rate": "request starts/s per host, for the whole job; 0: no cap",
    "connect_timeout": "seconds",
    "read_timeout": "seconds per socket read",
    "total_timeout": "seconds for a whole body",
    "max_bytes": "byte cap per response",
    "max_redirects": "hops, each one re-checked",
    "retries": "after 429/5xx/connection resets only",
    "backoff": "seconds before the first retry, doubling",
    "max_retry_after": "seconds; a longer Retry-After gives up instead of waiting",
    "user_agent": f"the User-Agent header (robots.txt token: {FetchConfig.agent_token})",
}
POSITIVE = ("threads", "per_host_concurrency", "connect_timeout", "read_timeout")
POSITIVE += ("total_timeout", "max_bytes")
NOT_NEGATIVE = ("per_host_rate", "retries", "max_redirects", "backoff", "max_retry_after")


def add_fetch_flags(parser: argparse.ArgumentParser) -> None:
    """``--allow-private-networks`` and a flag per FetchConfig setting in FLAGS."""
    group = parser.add_argument_group("fetching")
    group.add_argument(
        "--allow-private-networks",
        action="store_true",
        help="allow loopback/private addresses (local demo and tests only)",
    )
    group.add_argument(
        "--politeness-unit",
        choices=UNITS,
        default=DEFAULT_UNIT,
        help="what the per-host caps count as one host: its name, or its registrable domain "
        "(img1.cdn.example.com and img2.cdn.example.com are example.com)",
    )
    defaults = FetchConfig()
    for name, text in FLAGS.items():
        default = getattr(defaults, name)
        flag = "--" + name.replace("_", "-")
        help_text = f"{text} (default: %(default)s)"
        group.add_argument(flag, type=type(default), default=default, help=help_text)


def check_fetch_flags(args: argparse.Namespace) -> None:
    for name in POSITIVE:
        if getattr(args, name) <= 0:
            raise UsageError(f"--{name.replace('_', '-')} must be positive")
    for name in NOT_NEGATIVE:
        if getattr(args, name) < 0:
            raise UsageError(f"--{name.replace('_', '-')} must not be negative")


def fetch_config(args: argparse.Namespace, **fixed) -> FetchConfig:
    """The FetchConfig the flags describe (checked), plus what the job fixes itself."""
    check_fetch_flags(args)
    given = {name: getattr(args, name) for name in FLAGS}
    given["allow_private_networks"] = args.allow_private_networks
    return dataclasses.replace(FetchConfig(), **given, **fixed)
