"""The jobs' command-line plumbing: which runner a job gets when none is named."""

import argparse

import apache_beam as beam
from apache_beam.options.pipeline_options import StandardOptions
from apache_beam.runners.portability import prism_runner
from apache_beam.testing.util import assert_that, equal_to

from pipeline.options import LOCAL_RUNNER, add_sharding_flags, parse_job_args
from pipeline.runner import LocalRunner


def _parse(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("--input")
    return parse_job_args(parser, argv)


def test_a_job_without_a_runner_gets_the_local_runner():
    _, options = _parse(["--input", "x", "--direct_num_workers", "2"])
    assert options.view_as(StandardOptions).runner == LOCAL_RUNNER


def test_a_named_runner_is_kept():
    _, options = _parse(["--input", "x", "--runner", "DataflowRunner"])
    assert options.view_as(StandardOptions).runner == "DataflowRunner"


def test_the_local_runner_never_tries_prism(monkeypatch):
    def refuse(*_, **__):
        raise AssertionError("PrismRunner was tried (it downloads a binary at run time)")

    monkeypatch.setattr(prism_runner.PrismRunner, "run_pipeline", refuse)
    with beam.Pipeline(runner=LocalRunner()) as pipeline:
        squares = pipeline | beam.Create([1, 2, 3]) | beam.Map(lambda x: x * x)
        assert_that(squares, equal_to([1, 4, 9]))


def test_the_shared_sharding_flags_keep_crawls_old_names_as_aliases():
    parser = argparse.ArgumentParser()
    add_sharding_flags(parser, "shards", key_buckets=16, key_buckets_help="buckets")
    old = parser.parse_args(["--num-shards", "3", "--dedup-buckets", "5"])
    new = parser.parse_args(["--shards", "3", "--key-buckets", "5"])
    assert vars(old) == vars(new) == {"shards": 3, "key_buckets": 5}
