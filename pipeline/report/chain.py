"""The runs of one curation, found from its last filter run by following each job's input.

ALIGN's recipe filters twice: ``align-filter --rules text`` on the crawled pairs (cheap, before
any download), then ``align-filter --rules all`` on the downloaded images. Each run's
stats.json names its input and the download's names its own, so from the last run the report
walks back (filter <- download <- text filter <- crawl) and shows the rules of every run.

A record leaves the curation once: rejected by one run, or kept by the last. So the records
of the whole curation are each upstream filter run's rejected records plus every record of
the last run, and its counts are the runs' counts added up.
"""

from __future__ import annotations

import posixpath
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import pairwise

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from pipeline.stats import STATS_FILE, read_stats

MAX_RUNS = 8  # a trail longer than this is not a curation (or loops through odd paths)
GLOB_CHARS = "*?["
CRAWL = "align-crawl"  # the first job: its input is web archives, not a run of ours
BATCH_ROWS = 65_536


def matching_paths(pattern: str) -> list[str]:
    """Files matching a glob (local or gs://), in name order."""
    return sorted(
        metadata.path
        for match in FileSystems.match([pattern])
        for metadata in match.metadata_list
        if not metadata.path.endswith(".tmp")
    )


def iter_batches(pattern: str, columns: list[str]) -> Iterator[pa.Table]:
    """Streams the Parquet files of a glob as tables of at most BATCH_ROWS rows."""
    paths = matching_paths(pattern)
    if not paths:
        raise FileNotFoundError(f"no files match {pattern}")
    for path in paths:
        with FileSystems.open(path) as handle:
            parquet = pq.ParquetFile(handle)
            present = [name for name in columns if name in parquet.schema_arrow.names]
            for batch in parquet.iter_batches(batch_size=BATCH_ROWS, columns=present):
                yield pa.Table.from_batches([batch])


def measurements_pattern(output_dir: str) -> str:
    return FileSystems.join(output_dir, "measurements", "measurements-*.parquet")


@dataclass(frozen=True)
class Run:
    """One finished job of the curation: its folder and its stats.json."""

    folder: str
    stats: dict

    @property
    def is_filter(self) -> bool:
        return "rules" in self.stats and "mode" in self.stats

    @property
    def job(self) -> str:
        """The command that made it, e.g. 'align-filter --rules text'."""
        if self.is_filter:
            return f"align-filter --rules {self.stats['mode']}"
        return str(self.stats.get("job", "a job"))

    @property
    def label(self) -> str:
        """Its folder's name: 'text_filter', 'download', 'filter'."""
        return posixpath.basename(self.folder.rstrip("/")) or self.folder


def input_folder(source: str | None) -> str | None:
    """The folder a job read: its --input folder, or the folder of a glob or file in it; None
    where that is not one folder (no input, or a glob over folders)."""
    if not source:
        return None
    source = source.rstrip("/")
    if any(char in source for char in GLOB_CHARS) or source.endswith(".parquet"):
        source = posixpath.dirname(source)
    if not source or any(char in source for char in GLOB_CHARS):
        return None
    return source


def kept_before_purges(stats: dict) -> int:
    """What a job kept when it ran: its ``kept`` plus what align-purge removed from it since
    (pipeline/purge/ledger.py), which is what the job after it read."""
    return int(stats["kept"]) + int(stats.get("counts", {}).get("purged/kept", 0))


def _stats_at(folder: str) -> dict | None:
    try:
        if not FileSystems.exists(FileSystems.join(folder, STATS_FILE)):
            return None
        return read_stats(folder)
    except (OSError, ValueError):  # unreadable or not JSON: not a run of ours
        return None


@dataclass
class Curation:
    """Every job found on the trail, upstream first; the report's own run is the last."""

    runs: list[Run]
    notes: list[str] = field(default_factory=list)

    @property
    def final(self) -> Run:
        return self.runs[-1]

    @property
    def filter_runs(self) -> list[Run]:
        """The filter runs whose records the report shows, upstream first, the report's own
        run last (whatever its stats.json holds)."""
        return [run for run in self.runs[:-1] if run.is_filter] + [self.final]

    def stats(self) -> dict:
        """The last run's stats.json with the counts of the whole curation: records in at the
        first filter run, kept by the last, rejected by every run; the rules of every run."""
        runs = self.filter_runs
        rejected, counts = Counter(), Counter()
        for run in runs:
            rejected.update(run.stats.get("rejected", {}))
            counts.update(run.stats.get("counts", {}))
        for run in runs[:-1]:  # a pair purged from a run's output is in the next run's count too
            rejected["purged"] -= kept_before_purges(run.stats) - int(run.stats["kept"])
        rejected = +rejected  # drops the zero left where nothing was purged
        merged = dict(self.final.stats)
        merged.update(
            {
                "in": int(runs[0].stats["in"]),
                "kept": int(self.final.stats["kept"]),
                "rejected": dict(sorted(rejected.items())),
                "counts": dict(sorted(counts.items())),
                "rules": list(dict.fromkeys(r for run in runs for r in run.stats["rules"])),
            }
        )
        chained = all(run.stats.get("balanced", True) for run in runs) and not self._breaks()
        merged["balanced"] = chained and merged["in"] == merged["kept"] + sum(rejected.values())
        return merged

    def _breaks(self) -> list[str]:
        """Where a filter run read a different number of records than the one before kept."""
        runs = self.filter_runs
        return [
            f"{later.job} ({later.label}/) read {later.stats['in']:,} records, but "
            f"{earlier.job} ({earlier.label}/) before it kept {earlier.stats['kept']:,}"
            for earlier, later in pairwise(runs)
            if int(later.stats["in"]) != kept_before_purges(earlier.stats)
        ]

    def all_notes(self) -> list[str]:
        return self.notes + self._breaks()

    def measurements(self, columns: list[str]) -> Iterator[tuple[Run, pa.Table]]:
        """Every filter run's measurement rows, upstream first, batch by batch."""
        for run in self.filter_runs:
            yield from (
                (run, table) for table in iter_batches(measurements_pattern(run.folder), columns)
            )

    def leaving(self, run: Run, table: pa.Table) -> pa.Table:
        """The rows of a run's batch that leave the curation there: an upstream run's rejected
        rows, every row of the last run. Over all runs, each record of the curation once."""
        if run is self.final:
            return table
        return table.filter(pc.invert(pc.fill_null(table.column("kept"), False)))


def curation_of(output_dir: str, stats: dict | None = None) -> Curation:
    """The runs that led to the filter run in output_dir, found through their inputs."""
    final = Run(output_dir, stats if stats is not None else read_stats(output_dir))
    runs, notes, seen = [final], [], {output_dir.rstrip("/")}
    while len(runs) < MAX_RUNS:
        earliest = runs[0]
        folder = input_folder(earliest.stats.get("input"))
        if folder is None and "input" not in earliest.stats and earliest.job != CRAWL:
            notes.append(
                f"{earliest.folder}/stats.json does not name its input: the rules of runs "
                "before it (e.g. align-filter --rules text) are not in this report."
            )
        found = _stats_at(folder) if folder and folder not in seen else None
        if found is None:
            break
        seen.add(folder)
        runs.insert(0, Run(folder, found))
    return Curation(runs, notes)
