"""The runner a job gets on one machine: Beam's FnApiRunner, without Prism, watchable while it runs.

Beam's local runner blocks until the pipeline is done and only then hands back its metrics,
so a launcher could not show progress. ``LocalRunner`` runs the pipeline on a thread and
returns a ``PipelineResult`` at once, like Dataflow's: ``metrics()`` answers while it runs,
``wait_until_finish()`` waits and raises what the pipeline raised. The jobs' launcher
(pipeline/monitor.py) then reads a local run and a Dataflow run the same way.

Live counters come from the bundles' own progress reports (Beam's Fn API asks each running
bundle for its counters every second) plus the final counters of every finished bundle.
Those reports need a worker that answers while it works: ``multi_processing`` workers (a
job's default with more than one worker, pipeline/options.py) answer over gRPC from their own
processes, and ``multi_threading`` (one worker) from a thread of this one. A run that names
no ``--direct_running_mode`` gets ``multi_threading`` here (Beam's default, ``in_memory``,
runs a bundle inside the request that starts it and cannot report before it ends).

Beam (2.77) flushes the runner's gRPC data streams (its inputs to every worker) and those
of a ``multi_threading`` worker (its outputs, over in-process gRPC) on a timer as well as by
size (``DATA_BUFFER_TIME_LIMIT_MS``, 1 s): a ``PeriodicThread`` calls ``flush()`` (send the
buffer, then clear it) while the writing thread goes on encoding elements into the same
buffer, unlocked, so an element written between the send and the clear is dropped, and one
caught half-written corrupts the stream. Jobs lost pairs that way (docs/archive.md); the
local runner flushes by size only (``multi_processing`` workers' own streams always did).
"""

from __future__ import annotations

import os
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterable

from apache_beam.metrics.execution import MetricKey, MetricResult
from apache_beam.metrics.metric import MetricResults
from apache_beam.metrics.metricbase import MetricName
from apache_beam.options.pipeline_options import DirectOptions
from apache_beam.portability.api import beam_provision_api_pb2
from apache_beam.runners.direct.direct_runner import SwitchingDirectRunner
from apache_beam.runners.portability import portable_metrics
from apache_beam.runners.portability.fn_api_runner import fn_runner, worker_handlers
from apache_beam.runners.portability.portable_runner import JobServiceHandle
from apache_beam.runners.runner import PipelineResult, PipelineState
from apache_beam.transforms import environments

REPORT_SECONDS = 1.0  # how often a running bundle is asked for its counters
DEFAULT_RUNNING_MODE = "multi_threading"


def user_counters(monitoring_infos: Iterable) -> Counter:
    """Counter values by (namespace, name), summed over the steps that report them."""
    counters = portable_metrics.from_monitoring_infos(monitoring_infos, user_metrics_only=True)[0]
    totals: Counter = Counter()
    for key, value in counters.items():
        totals[(key.metric.namespace, key.metric.name)] += value
    return totals


class LiveCounters:
    """The user counters of a running local pipeline.

    Finished bundles count with their final values; a running bundle with its latest
    progress report, until its stage's bundle is done and its final values replace it.
    """

    def __init__(self):
        self._lock = threading.Lock()
        self._finished: Counter = Counter()
        self._running: dict[str, Counter] = {}
        self._closed: set[str] = set()

    def report(self, instruction_id: str, monitoring_infos: Iterable) -> None:
        """A running bundle's counters so far (they only grow: an empty report changes nothing)."""
        counters = user_counters(monitoring_infos)
        with self._lock:
            if instruction_id in self._closed:
                return  # a report that arrived after its bundle ended
            held = self._running.setdefault(instruction_id, Counter())
            for key, value in counters.items():
                held[key] = max(held[key], value)

    def close(self, instruction_id: str) -> None:
        """The bundle stopped running; its last report counts until finish() replaces it."""
        with self._lock:
            self._closed.add(instruction_id)

    def finish(self, monitoring_infos: Iterable) -> None:
        """A stage's bundle is done: its final counters replace its bundles' reports."""
        counters = user_counters(monitoring_infos)
        with self._lock:
            self._finished.update(counters)
            for instruction_id in self._closed & self._running.keys():
                del self._running[instruction_id]

    def totals(self) -> Counter:
        with self._lock:
            totals = Counter(self._finished)
            for counters in self._running.values():
                totals.update(counters)
        return totals

    def metrics(self) -> MetricResults:
        return _CounterResults(self.totals())


class _CounterResults(MetricResults):
    """Counters as Beam's MetricResults, so a launcher queries a local run as it would Dataflow."""

    def __init__(self, totals: Counter):
        self._results = [
            MetricResult(MetricKey("", MetricName(namespace, name)), value, value)
            for (namespace, name), value in sorted(totals.items())
        ]

    def query(self, filter=None):  # noqa: A002 - Beam's signature
        counters = [r for r in self._results if self.matches(filter, r.key)]
        return {self.COUNTERS: counters, self.DISTRIBUTIONS: [], self.GAUGES: []}


# The runs being watched in this process. Beam creates a bundle's progress requester deep
# inside the FnApiRunner, where the runner cannot hand it a callback, so the requester finds
# its run here. While two local runs overlap in one process, their new bundles report to
# neither (each still counts its finished bundles): a report is never given to the wrong run.
_WATCHED: list[LiveCounters] = []
_WATCHED_LOCK = threading.Lock()


class _ReportingProgressRequester(fn_runner.ProgressRequester):
    """Beam's progress requester, reporting to the watched run's LiveCounters if any."""

    def __init__(self, worker_handler, instruction_id, frequency, callback=None):
        self._live = _WATCHED[0] if len(_WATCHED) == 1 and callback is None else None
        if self._live is not None:
            live = self._live
            callback = lambda progress: live.report(instruction_id, progress.monitoring_infos)  # noqa: E731
        super().__init__(worker_handler, instruction_id, frequency, callback)

    def stop(self):
        super().stop()
        if self._live is not None:
            self._live.close(self._instruction_id)


class _WatchedFnApiRunner(fn_runner.FnApiRunner):
    """The FnApiRunner, telling ``live`` the final counters of each bundle it finishes, and
    starting its worker processes as pipeline/worker_main.py (they end with this process)."""

    def __init__(self, live: LiveCounters, **kwargs):
        super().__init__(progress_request_frequency=REPORT_SECONDS, **kwargs)
        self.live = live

    # FnApiRunner.run_pipeline picks its environment from --direct_running_mode and builds
    # the pipeline proto with it at once; multi_processing's is replaced as it is set.
    @property
    def _default_environment(self):
        return self._environment

    @_default_environment.setter
    def _default_environment(self, environment) -> None:
        if isinstance(environment, environments.SubprocessSDKEnvironment):
            command = f"{sys.executable} -m pipeline.worker_main {os.getpid()}"
            environment = environments.SubprocessSDKEnvironment.from_command_string(command)
        self._environment = environment

    def _execute_bundle(self, runner_execution_context, bundle_context_manager, bundle_input):
        result = super()._execute_bundle(
            runner_execution_context, bundle_context_manager, bundle_input
        )
        self.live.finish(result.process_bundle.monitoring_infos)
        return result


class LocalResult(PipelineResult):
    """A local run on its own thread: live metrics while it runs, Beam's own when it is done."""

    def __init__(self, run: Callable[[], PipelineResult], live: LiveCounters):
        super().__init__(PipelineState.RUNNING)
        self._run, self._live = run, live
        self._result: PipelineResult | None = None
        self._error: BaseException | None = None
        # A daemon: an interrupted launcher exits without waiting for the pipeline.
        self._thread = threading.Thread(target=self._execute, name="local-pipeline", daemon=True)
        self._thread.start()

    def _execute(self) -> None:
        try:
            self._result = self._run()
            self._state = PipelineState.DONE
        except BaseException as error:  # noqa: BLE001 - re-raised by wait_until_finish
            self._error = error
            self._state = PipelineState.FAILED

    def wait_until_finish(self, duration=None):
        self._thread.join(None if duration is None else duration / 1000)
        if self._error is not None:
            raise self._error
        return self._state

    def metrics(self) -> MetricResults:
        return self._result.metrics() if self._result is not None else self._live.metrics()


def flush_by_size_only() -> None:
    """No timed flushes on the in-process gRPC data streams (see the module docstring): read
    when the runner's data server and its embedded worker start, as a run starts; 0 makes
    Beam pick its size-only stream (multi_processing workers already use that)."""
    worker_handlers.DATA_BUFFER_TIME_LIMIT_MS = 0


class LocalRunner(SwitchingDirectRunner):
    """Beam's DirectRunner without its first try on Prism, returning before the run ends.

    Since Beam 2.6x the DirectRunner first tries the PrismRunner, which downloads a Go
    binary from GitHub at run time (offline it fails and falls back), then runs the Python
    workers in its own process whatever --direct_running_mode says. Our jobs are batch
    jobs the FnApiRunner runs, which is where the DirectRunner falls back to: we go there
    directly, so a laptop with internet runs the same way as CI without it.
    """

    def run_pipeline(self, pipeline, options):
        if "direct_running_mode" not in options.get_all_options(drop_default=True):
            options.view_as(DirectOptions).direct_running_mode = DEFAULT_RUNNING_MODE
        encoded = JobServiceHandle.encode_pipeline_options(options.get_all_options())
        provision = fn_runner.ExtendedProvisionInfo(
            beam_provision_api_pb2.ProvisionInfo(pipeline_options=encoded)
        )
        live = LiveCounters()
        runner = _WatchedFnApiRunner(live, provision_info=provision)

        def run() -> PipelineResult:
            fn_runner.ProgressRequester = _ReportingProgressRequester
            flush_by_size_only()
            with _WATCHED_LOCK:
                _WATCHED.append(live)
            try:
                return runner.run_pipeline(pipeline, options)
            finally:
                with _WATCHED_LOCK:
                    _WATCHED.remove(live)

        return LocalResult(run, live)
