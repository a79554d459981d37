"""Per-job accounting: every record that enters a job leaves it kept, rejected or deferred by name.

DoFns emit *tallies* (plain dicts of counts) beside their records; the job sums them
with a combiner and writes ``stats.json``. Keys of a tally:

- ``"in"``: records read by the job (counted where they are read, not derived);
- ``"kept"``: records written to the job's main output;
- ``"rejected/<reason>"``: records rejected, by the first reason that rejected them;
- ``"deferred/<reason>"``: records left for a later run (the download's host budgets);
- anything else: extra counts reported under ``"counts"`` (e.g. ``"warc/response"``).

The same counts are mirrored to Beam metrics counters so they show in the runner's UI.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from pipeline.shards import publish

IN = "in"
KEPT = "kept"
REJECTED_PREFIX = "rejected/"
DEFERRED_PREFIX = "deferred/"
STATS_FILE = "stats.json"


def rejected(reason: str) -> str:
    """The tally key of a rejection reason."""
    return REJECTED_PREFIX + reason


def deferred(reason: str) -> str:
    """The tally key of a record left for a later run (e.g. a host's budget was spent)."""
    return DEFERRED_PREFIX + reason


def mirror_to_metrics(namespace: str, tally: Mapping[str, int]) -> None:
    """Bump a Beam counter per key, so a running job shows its counts in the runner's UI."""
    for key, value in tally.items():
        if value:
            Metrics.counter(namespace, key.replace("/", "_")).inc(value)


class SumTallies(beam.CombineFn):
    """Adds count dicts key by key; associative, so Beam lifts it before the shuffle.

    Used for tallies and for any other small dict of counts (e.g. a histogram of counts).
    """

    def create_accumulator(self) -> Counter:
        return Counter()

    def add_input(self, accumulator: Counter, tally: Mapping[str, int]) -> Counter:
        accumulator.update(tally)
        return accumulator

    def merge_accumulators(self, accumulators: Iterable[Counter]) -> Counter:
        merged = Counter()
        for accumulator in accumulators:
            merged.update(accumulator)
        return merged

    def extract_output(self, accumulator: Counter) -> dict[str, int]:
        return dict(accumulator)


def stats_document(tally: Mapping[str, int], extra: Mapping | None = None) -> dict:
    """Shapes summed counts as stats.json: in, kept, rejected by reason, other counts."""
    rejected_counts = _with_prefix(tally, REJECTED_PREFIX)
    deferred_counts = _with_prefix(tally, DEFERRED_PREFIX)
    others = {
        key: value
        for key, value in sorted(tally.items())
        if key not in (IN, KEPT) and not key.startswith((REJECTED_PREFIX, DEFERRED_PREFIX))
    }
    document = {
        IN: int(tally.get(IN, 0)),
        KEPT: int(tally.get(KEPT, 0)),
        "rejected": rejected_counts,
        "counts": others,
    }
    if deferred_counts:  # only jobs that defer work (align-download) say so
        document["deferred"] = deferred_counts
    left = sum(rejected_counts.values()) + sum(deferred_counts.values())
    document["balanced"] = document[IN] == document[KEPT] + left
    if extra:
        document.update(extra)
    return document


def _with_prefix(tally: Mapping[str, int], prefix: str) -> dict[str, int]:
    return {
        key[len(prefix) :]: value for key, value in sorted(tally.items()) if key.startswith(prefix)
    }


def write_bytes(path: str, data: bytes) -> str:
    """Writes through Beam's FileSystems (local or gs://) to a temporary name, then renames:
    a reader never sees half a file, and a crash leaves only a ``.tmp`` behind."""
    with FileSystems.create(path + ".tmp") as handle:
        handle.write(data)
    return publish(path + ".tmp", path)


def write_json(path: str, document: Mapping) -> str:
    """Writes JSON, atomically."""
    return write_bytes(path, (json.dumps(document, indent=2, sort_keys=True) + "\n").encode())


def read_stats(output_dir: str) -> dict:
    """Reads a finished job's stats.json."""
    with FileSystems.open(FileSystems.join(output_dir, STATS_FILE)) as handle:
        return json.loads(handle.read())


class WriteStats(beam.PTransform):
    """Sums a PCollection of tallies and writes ``<output_dir>/stats.json``."""

    def __init__(self, output_dir: str, extra: Mapping | None = None):
        super().__init__()
        self.output_dir = output_dir
        self.extra = dict(extra or {})

    def expand(self, tallies):
        path = FileSystems.join(self.output_dir, STATS_FILE)
        return (
            tallies
            | "SumTallies" >> beam.CombineGlobally(SumTallies())
            | "ToDocument" >> beam.Map(stats_document, self.extra)
            | "WriteJson" >> beam.Map(lambda document: write_json(path, document))
        )
