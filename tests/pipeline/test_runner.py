"""The local runner's own fixes to Beam's FnApiRunner (pipeline/runner.py)."""

import sys

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from pipeline.runner import LocalRunner

ELEMENTS = 300_000  # ~3 s of output on one thread: the 1 s timed flush fires a few times


class Burst(beam.DoFn):
    def process(self, seed):
        for number in range(ELEMENTS):
            yield number, "x" * 50  # ~20 MB in all: each flush copies a large buffer


@pytest.mark.timeout(90)  # before the fix a run could also hang on a stream cut mid-element
def test_a_multi_threaded_run_loses_no_element_to_a_timed_flush(tmp_path):
    """Beam's in-process gRPC data streams are flushed by a timer thread while the bundle
    writes into them; elements written between the flush's send and its clear were lost
    (300k through a GroupByKey: 57 and 15,240 lost in two runs before the fix, a third
    hung). Frequent
    thread switches make that race likely; the local runner must flush by size only."""
    options = PipelineOptions(["--direct_running_mode", "multi_threading"])
    pipeline = beam.Pipeline(runner=LocalRunner(), options=options)
    out = tmp_path / "count"
    _ = (
        pipeline
        | beam.Create([0])
        | beam.ParDo(Burst())
        | beam.GroupByKey()
        | "Sizes" >> beam.Map(lambda group: len(list(group[1])))
        | beam.CombineGlobally(sum)
        | "Write" >> beam.Map(lambda total: out.write_text(str(total)))
    )
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        pipeline.run().wait_until_finish()
    finally:
        sys.setswitchinterval(interval)
    assert int(out.read_text()) == ELEMENTS
