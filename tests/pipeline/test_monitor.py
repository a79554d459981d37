"""What a job shows while it runs and when it ends: live counters from the local runner, the
progress line, the closing summary, and a Dataflow submission that does not wait."""

from __future__ import annotations

import os
import threading
import time

import apache_beam as beam
import pytest
from apache_beam.metrics.execution import MetricKey, MetricResult
from apache_beam.metrics.metricbase import MetricName
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.runner import PipelineResult, PipelineState

from pipeline.monitor import LiveTally, Meter, job_counters, judged, run_job, summary, watch
from pipeline.runner import LocalRunner

FIRST, SECOND = threading.Event(), threading.Event()  # held in this process (multi_threading)


class CountThenWait(beam.DoFn):
    """Counts 5 into ``namespace`` as it goes, then holds its bundle until the module's event
    named ``release`` is set (by name: a pickled event would be a copy)."""

    def __init__(self, namespace: str, release: str):
        self.namespace, self.release = namespace, release

    def process(self, element):
        tally = LiveTally(self.namespace, every=0)
        for _ in range(5):
            tally.add({"in": 1, "kept": 1})
        globals()[self.release].wait(timeout=120)
        yield element


def wait_for(result, namespace: str, counts: dict) -> dict | None:
    seen, deadline = None, time.monotonic() + 120
    while time.monotonic() < deadline and seen != counts:
        time.sleep(0.2)
        seen = job_counters(result, namespace)
    return seen


def test_a_local_run_shows_its_counters_while_it_runs_and_counts_each_bundle_once():
    FIRST.clear(), SECOND.clear()
    pipeline = beam.Pipeline(runner=LocalRunner(), options=PipelineOptions([]))
    _ = (
        pipeline
        | beam.Create(["x"])
        | "First" >> beam.ParDo(CountThenWait("first", "FIRST"))
        | beam.Reshuffle()  # two stages: the second runs once the first has finished
        | "Second" >> beam.ParDo(CountThenWait("second", "SECOND"))
    )
    result = pipeline.run()
    five = {"in": 5, "kept": 5}
    while_running = wait_for(result, "first", five)  # from the bundle's progress reports
    FIRST.set()
    second_running = wait_for(result, "second", five)
    first_finished = job_counters(result, "first")  # its final counters, not added twice
    state = result.state
    SECOND.set()
    result.wait_until_finish()
    assert while_running == second_running == first_finished == five
    assert state == PipelineState.RUNNING
    assert job_counters(result, "first") == job_counters(result, "second") == five


class CountThenWaitForFile(beam.DoFn):
    """Counts 5 into ``namespace``, then holds its bundle until the file ``release`` exists
    (an event cannot cross into a worker process)."""

    def __init__(self, namespace: str, release: str):
        self.namespace, self.release = namespace, release

    def process(self, element):
        tally = LiveTally(self.namespace, every=0)
        for _ in range(5):
            tally.add({"in": 1, "kept": 1})
        deadline = time.monotonic() + 120
        while not os.path.exists(self.release) and time.monotonic() < deadline:
            time.sleep(0.05)
        yield element


def test_a_run_in_worker_processes_shows_its_counters_while_it_runs(tmp_path):
    """The jobs' default on a machine with several cores: multi_processing workers answer
    the runner's progress requests over gRPC while their bundles run."""
    release = tmp_path / "release"
    multi = ["--direct_running_mode", "multi_processing", "--direct_num_workers", "2"]
    pipeline = beam.Pipeline(runner=LocalRunner(), options=PipelineOptions(multi))
    _ = (
        pipeline
        | beam.Create(["x", "y"])
        | beam.Reshuffle()
        | beam.ParDo(CountThenWaitForFile("held", str(release)))
    )
    result = pipeline.run()
    try:
        while_running = wait_for(result, "held", {"in": 10, "kept": 10})
        state = result.state
    finally:
        release.touch()
    result.wait_until_finish()
    assert while_running == {"in": 10, "kept": 10}
    assert state == PipelineState.RUNNING
    assert job_counters(result, "held") == {"in": 10, "kept": 10}


def test_a_failed_local_run_raises_from_wait_until_finish():
    pipeline = beam.Pipeline(runner=LocalRunner(), options=PipelineOptions([]))
    _ = pipeline | beam.Create([1]) | beam.Map(lambda x: 1 / 0)
    result = pipeline.run()
    with pytest.raises(Exception, match="division by zero"):
        result.wait_until_finish()
    assert result.state == PipelineState.FAILED


class FakeResult(PipelineResult):
    """A remote run: its counters grow each time they are read, it ends after a few reads."""

    def __init__(self, reads: int = 3):
        super().__init__(PipelineState.RUNNING)
        self.reads, self.left = 0, reads

    def job_id(self):
        return "2026-01-01_job"

    def wait_until_finish(self, duration=None):
        while self.left > 0:
            time.sleep(0.01)
        self._state = PipelineState.DONE
        return self._state

    def metrics(self):
        result = self

        class Counters:
            COUNTERS = "counters"

            def query(self, filter=None):  # noqa: A002
                result.reads += 1
                result.left -= 1
                n = result.reads
                return {"counters": [counter("kept", 3 * n), counter("rejected_not_html", n)]}

        return Counters()


def counter(name, value):
    return MetricResult(MetricKey("step", MetricName("align-x", name)), None, value)


def test_in_a_log_the_line_comes_every_few_seconds_with_done_total_and_reasons(capsys):
    meter = Meter("align-x", total=100, done=judged)
    watch(FakeResult(reads=3), meter, every=0, poll=0.01)
    lines = capsys.readouterr().err.splitlines()
    assert lines and all(line.startswith("align-x: ") for line in lines)
    assert "/100 [" in lines[-1] and "kept 75.0%, not_html 25.0%" in lines[-1]


def test_a_dataflow_job_submitted_without_waiting_says_so_and_is_not_watched(capsys):
    class Submitting:
        def run(self):
            return FakeResult(reads=1_000_000)  # would never end if it were watched

    options = PipelineOptions(["--runner", "DataflowRunner", "--no_wait_until_finish"])
    assert run_job(Submitting(), Meter("align-x"), options, every=30) is None
    out = capsys.readouterr().out
    assert (
        out == "align-x: submitted job 2026-01-01_job; its stats.json is written when it finishes\n"
    )


def test_the_summary_says_in_kept_rejected_by_reason_throughput_and_outputs():
    stats = {"in": 1000, "kept": 600, "rejected": {"b": 100, "a": 300}}
    text = summary("align-x", stats, 20.0, ["out: 4 shards"], warnings=["1 odd file"])
    assert text.splitlines() == [
        "align-x: 1,000 records in 20.0 s (50/s): 600 kept (60.0%), 400 rejected",
        "  rejected: a 300 (30.0%), b 100 (10.0%)",
        "  output: out: 4 shards",
        "align-x: warning: 1 odd file",
    ]


def test_the_summary_lists_the_largest_reasons_and_counts_the_rest():
    rejected = {f"r{i}": i for i in range(1, 9)}
    stats = {"in": 36, "kept": 0, "rejected": rejected}
    line = summary("align-x", stats, 1.0, [], reasons_shown=2).splitlines()[1]
    assert line == "  rejected: r8 8 (22.2%), r7 7 (19.4%), and 6 more (stats.json)"


def test_a_meter_counting_bytes_also_says_how_many_records_were_read():
    meter = Meter("align-crawl", 10, "B", lambda counters: counters["input_bytes"], True)
    note = meter.note({"in": 40, "kept": 10, "rejected_not_html": 30, "input_bytes": 5})
    assert note == "40 records read, kept 25.0%, not_html 75.0%"
