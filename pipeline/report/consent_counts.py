"""The report's consent section: per signal, what every job of the curation left out (pages,
images, pairs), what align-purge removed afterwards, and, on the synthetic web, how many
pairs its ground truth labels with each signal.

The counts come from each run's stats.json (the records themselves are gone, as their owners
asked): align-crawl rejects a reserved page under its signal and counts its pairs under
``pairs/withheld/<signal>`` and its ``<img>`` tags under ``images/withheld/<signal>``;
align-download names a refused image by its status; every job names an ``--opt-out`` match
``opt_out_<kind>``; align-purge counts ``purged/<reason>`` and keeps a ``purge-*.json`` record.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, replace

import pyarrow as pa
from apache_beam.io.filesystems import FileSystems

from pipeline.report.chain import Curation, Run

# Reasons that are an owner's reservation (or the user's list), by the jobs that give them.
PAGE_SIGNALS = ("x_robots_tag", "meta_robots", "tdm_reservation", "tdm_reservation_meta")
IMAGE_SIGNALS = (
    "robots_disallowed", "x_robots_tag", "tdm_reservation", "tdmrep_json", "ai_txt",
)  # fmt: skip
OPT_OUT = "opt_out_"
WITHHELD_PAIRS, WITHHELD_IMAGES = "pairs/withheld/", "images/withheld/"
PURGED = "purged/"
CRAWL, DOWNLOAD = "align-crawl", "align-download"


@dataclass(frozen=True)
class ConsentRow:
    """What one signal removed at one job: None where the job cannot know (a page refused
    by its header before it was read has no pair count)."""

    signal: str
    run: str  # the run's folder name
    job: str
    pages: int | None
    images: int | None
    pairs: int | None
    labelled: int | None = None  # pairs the ground truth labels with the signal


def _crawl_rows(run: Run) -> list[ConsentRow]:
    rejected, counts = run.stats.get("rejected", {}), run.stats.get("counts", {})
    signals = [s for s in rejected if s in PAGE_SIGNALS or s.startswith(OPT_OUT)]
    signals += [k[len(WITHHELD_PAIRS) :] for k in counts if k.startswith(WITHHELD_PAIRS)]
    rows = []
    for signal in sorted(set(signals)):
        pairs = counts.get(WITHHELD_PAIRS + signal)
        images = counts.get(WITHHELD_IMAGES + signal, pairs if signal.startswith(OPT_OUT) else None)
        rows.append(ConsentRow(signal, run.label, run.job, rejected.get(signal, 0), images, pairs))
    return rows


def _record_rows(run: Run) -> list[ConsentRow]:
    """A job whose records are pairs: each rejected one is one pair (and, at the download or
    later, one image)."""
    rejected = run.stats.get("rejected", {})
    images = run.job == DOWNLOAD or run.stats.get("mode") in ("all", "none")
    wanted = IMAGE_SIGNALS if run.job == DOWNLOAD else ()
    return [
        ConsentRow(reason, run.label, run.job, None, n if images else None, n)
        for reason, n in sorted(rejected.items())
        if reason in wanted or reason.startswith(OPT_OUT)
    ]


def consent_rows(curation: Curation, truth: pa.Table | None = None) -> list[ConsentRow]:
    """Every signal's removals, upstream job first; with the ground truth's labelled pairs."""
    labelled = labelled_pairs(truth) if truth is not None else {}
    rows = []
    for run in curation.runs:
        found = _crawl_rows(run) if run.job == CRAWL else _record_rows(run)
        stage = "page" if run.job == CRAWL else "image"
        rows += [replace(row, labelled=labelled.get((stage, row.signal))) for row in found]
    return rows


def labelled_pairs(truth: pa.Table) -> dict[tuple[str, str], int]:
    """Pairs per ``consent`` label of the synthetic web, keyed by where the label is seen:
    ``page`` (a reserved page's pairs, which the crawl never emits: counted per page, as the
    crawl withholds them) or ``image`` (an emitted pair whose image host reserves it: counted
    once per (url, alt), as the download gets each pair once)."""
    if "consent" not in truth.column_names:
        return {}
    emitted = ["emitted_by_crawl"] if "emitted_by_crawl" in truth.column_names else []
    page = ["page_url"] if "page_url" in truth.column_names else []
    rows = truth.select(["url", "alt", *page, "consent", *emitted]).to_pylist()
    unique = {}
    for row in rows:
        if not row["consent"]:
            continue
        stage = "image" if row.get("emitted_by_crawl") else "page"
        key = (row["url"], row["alt"]) + ((row.get("page_url"),) if stage == "page" else ())
        unique[key] = (stage, row["consent"])
    return dict(Counter(unique.values()))


@dataclass(frozen=True)
class PurgeRow:
    run: str
    record: str
    when: str
    list_path: str
    removed: dict[str, int]
    files: int


def purge_rows(curation: Curation) -> list[PurgeRow]:
    """Every purge record the runs' stats.json name, oldest first per run."""
    rows = []
    for run in curation.runs:
        for name in run.stats.get("purges", []):
            path = FileSystems.join(run.folder, name)
            try:
                with FileSystems.open(path) as handle:
                    record = json.loads(handle.read())
            except (OSError, ValueError):
                continue
            rows.append(
                PurgeRow(run.label, name, record.get("when", ""), record.get("list", ""),
                         record.get("removed", {}), len(record.get("files", [])))
            )  # fmt: skip
    return rows
