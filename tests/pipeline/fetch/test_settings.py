"""The fetcher's settings are declared once: every job that fetches takes the same flags."""

import dataclasses

import pytest

from commandline.flags import UsageError
from pipeline.crawl.cli import build_parser as crawl_parser
from pipeline.download.cli import build_parser as download_parser
from pipeline.fetch.fetcher import FetchConfig
from pipeline.fetch.settings import FLAGS, fetch_config

JOB_ARGS = {
    "crawl": (crawl_parser, ["--page-urls", "p.txt", "--output", "o"]),
    "download": (download_parser, ["--input", "i", "--output", "o"]),
}


def fetch_flags(parser) -> dict[str, object]:
    return {
        action.option_strings[0]: action.default
        for group in parser._action_groups
        if group.title == "fetching"
        for action in group._group_actions
    }


def test_crawl_and_download_offer_the_same_fetch_flags_with_the_same_defaults():
    crawl, download = (fetch_flags(make()) for make, _ in JOB_ARGS.values())
    assert crawl == download
    assert len(crawl) == len(FLAGS) + 2  # and --allow-private-networks, --politeness-unit


@pytest.mark.parametrize("job", JOB_ARGS)
def test_without_flags_a_job_fetches_with_the_fetchers_defaults(job):
    make, argv = JOB_ARGS[job]
    assert fetch_config(make().parse_args(argv)) == FetchConfig()


@pytest.mark.parametrize("job", JOB_ARGS)
def test_every_flag_reaches_the_fetcher(job):
    make, argv = JOB_ARGS[job]
    args = make().parse_args([*argv, "--threads", "3", "--max-retry-after", "5"])
    config = fetch_config(args, accept="image/*")
    assert (config.threads, config.max_retry_after, config.accept) == (3, 5.0, "image/*")
    assert dataclasses.replace(config, threads=64, max_retry_after=30.0, accept="*/*") == (
        FetchConfig()
    )


@pytest.mark.parametrize("flag, value", [("--threads", "0"), ("--retries", "-1")])
def test_an_impossible_value_names_its_flag(flag, value):
    make, argv = JOB_ARGS["crawl"]
    with pytest.raises(UsageError, match=flag):
        fetch_config(make().parse_args([*argv, flag, value]))
