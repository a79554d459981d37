"""The filter job's composite transform on its own, in a TestPipeline: tables in, kept
records, rejects by reason and tallies out."""

from __future__ import annotations

import apache_beam as beam
from apache_beam.testing.test_pipeline import TestPipeline
from apache_beam.testing.util import assert_that, equal_to

from filters.config import FilterConfig
from filters.rule import TEXT
from filters.table import rules_for
from pipeline.filter.job import Filter
from pipeline.records import PAIR_SCHEMA
from pipeline.shards import rows_to_table
from tests.pipeline.filter.inputs import pair


def test_the_filter_transform_runs_alone_in_a_test_pipeline(tmp_path):
    shared = [pair(f"http://127.0.0.2/{i}.jpg", "a red fox in the snow") for i in range(11)]
    rows = shared + [
        pair("http://127.0.0.2/a.jpg", "hi"),
        pair("http://127.0.0.2/b.jpg", "a green boat"),
    ]
    table = rows_to_table(rows, PAIR_SCHEMA)
    job = Filter(rules_for(TEXT), FilterConfig(languages=()), PAIR_SCHEMA, str(tmp_path))
    with TestPipeline() as pipeline:
        out = pipeline | beam.Create([table]) | job
        kept = out["kept"] | beam.FlatMap(lambda kept: kept.column("alt").to_pylist())
        assert_that(kept, equal_to(["a green boat"]))
        first = out["rejects"] | beam.FlatMap(
            lambda rejects: [reasons[0] for reasons in rejects.column("reasons").to_pylist()]
        )
        expected = ["alt_shared_by_many_images"] * 11 + ["alt_too_short"]
        assert_that(first, equal_to(expected), label="FirstReasons")
        counted = out["tallies"] | beam.Map(lambda tally: tally.get("in", 0))
        assert_that(counted | beam.CombineGlobally(sum), equal_to([13]), label="In")
