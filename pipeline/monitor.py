"""Progress and summaries of the Beam jobs, counted with Beam's metrics, on any runner.

Workers count (``LiveTally``): a DoFn adds each record's tally as it goes, and the counts
reach the job's Beam counters (namespace = the job's command, e.g. ``align-crawl``) about
once a second, so a long element (a 1 GB WARC file, a download shard) shows progress while
it runs. The launcher watches (``run_job``): it starts the pipeline, polls the result's
metrics (every second on the local runner, pipeline/runner.py; every 10 s on Dataflow,
whose ``--no_wait_until_finish`` and ``--template_location`` return at once as before) and
draws one line (commandline/progress.py); when the job ends, ``summary`` says what stats.json
holds: records in, kept, rejected by reason, throughput and where the outputs are.

A job adopts it in a few lines (docs/architecture.md, "A new job"): count with
``LiveTally(job).add(tally)`` in its DoFns, describe its progress with a ``Meter``, replace
``with beam.Pipeline(...)`` by ``run_job(pipeline, meter, options, args.progress_every)``
and print ``summary(...)``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from apache_beam.metrics.metric import MetricResults, MetricsFilter
from apache_beam.options.pipeline_options import (
    GoogleCloudOptions,
    PipelineOptions,
    StandardOptions,
)
from apache_beam.runners.runner import PipelineResult

from commandline.progress import ProgressLine, duration, share, top_reasons
from pipeline.runner import LocalResult
from pipeline.stats import IN, KEPT, REJECTED_PREFIX, mirror_to_metrics

LOCAL_POLL_SECONDS = 1.0
REMOTE_POLL_SECONDS = 10.0  # a metrics query on Dataflow is a request to its service
FLUSH_SECONDS = 1.0
REJECTED_METRIC = REJECTED_PREFIX.replace("/", "_")  # mirror_to_metrics' spelling
_LOG = logging.getLogger(__name__)


# --- workers: counting ----------------------------------------------------------------------


class LiveTally:
    """A DoFn's counts, added record by record and flushed to Beam counters about once a
    second (and by ``flush()`` at the end of an element), so progress shows mid-element."""

    def __init__(self, namespace: str, every: float = FLUSH_SECONDS):
        self.namespace, self.every = namespace, every
        self.pending: Counter = Counter()
        self.flushed_at = time.monotonic()

    def add(self, tally: Mapping[str, int]) -> None:
        self.pending.update(tally)
        self.tick()

    def tick(self) -> None:
        """Flushes when a second has passed (after counts were added to ``pending``)."""
        if time.monotonic() - self.flushed_at >= self.every:
            self.flush()

    def flush(self) -> None:
        mirror_to_metrics(self.namespace, self.pending)
        self.pending.clear()
        self.flushed_at = time.monotonic()


# --- the launcher: watching -----------------------------------------------------------------


def records_in(counters: Mapping[str, int]) -> int:
    """Progress as records read (crawl's page URLs, download's pairs)."""
    return counters.get(IN, 0)


def judged(counters: Mapping[str, int]) -> int:
    """Progress as records kept or rejected (the filter reads all before it judges any)."""
    return counters.get(KEPT, 0) + sum(rejections(counters).values())


def rejections(counters: Mapping[str, int]) -> dict[str, int]:
    """Rejected counts by reason, from the counters' ``rejected_<reason>`` names."""
    return {
        name[len(REJECTED_METRIC) :]: value
        for name, value in counters.items()
        if name.startswith(REJECTED_METRIC)
    }


@dataclass
class Meter:
    """What a job's progress line counts: ``done(counters)`` of ``total`` units."""

    job: str  # the command, also the namespace of the job's Beam counters
    total: int | None = None  # units of work, when known before the run
    unit: str = " records"
    done: Callable[[Mapping[str, int]], int] = records_in
    unit_scale: bool = False  # bytes: 1.2 GB rather than 1200000000

    def note(self, counters: Mapping[str, int]) -> str:
        """``1,234 records, kept 61.0%, not_html 30.1%, no_image_pairs 9.0%``."""
        parts = []
        if self.done is not records_in and counters.get(IN):
            parts.append(f"{counters[IN]:,} records read")
        whole = judged(counters)
        if whole:
            parts.append(f"kept {share(counters.get(KEPT, 0), whole)}")
            parts.append(top_reasons(rejections(counters), whole, limit=2))
        return ", ".join(part for part in parts if part)


def finishes_here(options: PipelineOptions) -> bool:
    """False when the launcher only builds the job: a Dataflow template
    (``--template_location``) or a job submitted without waiting (``--no_wait_until_finish``).
    A local run always finishes here: its workers live in this process."""
    if options.view_as(GoogleCloudOptions).template_location:
        return False
    runner = str(options.view_as(StandardOptions).runner or "")
    local = runner.endswith("LocalRunner") or "Direct" in runner
    return local or not options.view_as(StandardOptions).no_wait_until_finish


def run_job(pipeline, meter: Meter, options: PipelineOptions, every: float) -> float | None:
    """Runs the pipeline with a progress line until it ends; returns the seconds it took, or
    None when it does not finish here (see ``finishes_here``: then it says what it did)."""
    started = time.monotonic()
    result = pipeline.run()
    if not finishes_here(options):
        print(submitted(meter.job, result, options), flush=True)
        return None
    watch(result, meter, every)
    return time.monotonic() - started


def submitted(job: str, result: PipelineResult, options: PipelineOptions) -> str:
    template = options.view_as(GoogleCloudOptions).template_location
    if template:
        return f"{job}: wrote the Dataflow template {template}"
    job_id = result.job_id() if hasattr(result, "job_id") else "?"
    return f"{job}: submitted job {job_id}; its stats.json is written when it finishes"


def watch(result: PipelineResult, meter: Meter, every: float, poll: float | None = None) -> None:
    """Polls the running result's counters into a progress line (every ``poll`` seconds: by
    default 1 s on the local runner, 10 s elsewhere); raises what the run raised."""
    failure: list[BaseException] = []

    def wait() -> None:
        try:
            result.wait_until_finish()
        except BaseException as error:  # noqa: BLE001 - re-raised on the launcher's thread
            failure.append(error)

    waiter = threading.Thread(target=wait, name="wait-until-finish", daemon=True)
    waiter.start()
    if poll is None:
        poll = LOCAL_POLL_SECONDS if isinstance(result, LocalResult) else REMOTE_POLL_SECONDS
    line = ProgressLine(
        meter.job, meter.total, meter.unit, unit_scale=meter.unit_scale, every=every
    )
    try:
        while waiter.is_alive():
            waiter.join(poll)
            counters = job_counters(result, meter.job)
            if counters is not None:
                line.update(meter.done(counters), meter.note(counters))
    finally:
        line.close()
    if failure:
        raise failure[0]


def job_counters(result: PipelineResult, namespace: str) -> dict[str, int] | None:
    """The job's counters as the runner has them now (attempted: live, retries included),
    summed over steps; None when the runner cannot say right now."""
    try:
        query = result.metrics().query(MetricsFilter().with_namespace(namespace))
    except Exception as error:  # noqa: BLE001 - a missed poll only delays the line
        _LOG.debug("metrics query failed: %s", error)
        return None
    totals: Counter = Counter()
    for counter in query[MetricResults.COUNTERS]:
        value = counter.attempted if counter.attempted is not None else counter.committed
        totals[counter.key.metric.name] += value or 0
    return dict(totals)


# --- the launcher: the closing summary ------------------------------------------------------


def summary(
    job: str,
    stats: Mapping,
    seconds: float,
    outputs: Sequence[str],
    unit: str = "records",
    warnings: Sequence[str] = (),
    reasons_shown: int = 5,
) -> str:
    """What a finished job did, in a few lines::

    align-crawl: 2,345 records in 27.3 s (86/s): 1,234 kept (52.6%), 1,111 rejected
      rejected: not_html 800 (34.1%), no_image_pairs 300 (12.8%), ...
      output: runs/x/crawl: 4 shards pairs-*.parquet, stats.json
    """
    records, kept = stats.get(IN, 0), stats.get(KEPT, 0)
    rejected, deferred = stats.get("rejected", {}), stats.get("deferred", {})
    rate = f" ({records / seconds:,.0f}/s)" if seconds > 0 and records else ""
    later = f", {sum(deferred.values()):,} deferred" if deferred else ""
    lines = [
        f"{job}: {records:,} {unit} in {duration(seconds)}{rate}: "
        f"{kept:,} kept ({share(kept, records)}), {sum(rejected.values()):,} rejected{later}"
    ]
    for what, counts in (("rejected", rejected), ("deferred", deferred)):
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        if ranked:
            shown = [f"{reason} {count:,} ({share(count, records)})" for reason, count in ranked]
            more = len(shown) - reasons_shown
            tail = f", and {more} more (stats.json)" if more > 0 else ""
            lines.append(f"  {what}: " + ", ".join(shown[:reasons_shown]) + tail)
    lines += [f"  output: {output}" for output in outputs]
    lines += [f"{job}: warning: {warning}" for warning in warnings]
    return "\n".join(lines)
