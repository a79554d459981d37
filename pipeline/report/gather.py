"""What the filter report shows, gathered from a finished run in one streaming pass per file set.

A run's measurements can hold billions of rows, so nothing here loads a whole table: the
Parquet shards are read batch by batch, histograms have fixed bins (the last one open-ended),
frequencies are counted in bounded memory, examples are the few smallest uids, and image
bytes are read only for the handful of uids shown as thumbnails, row group by row group.
"""

from __future__ import annotations

import io
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from PIL import Image

from commandline.flags import UsageError
from filters import table as rule_table
from filters.rule import GIVEN_BY
from pipeline.report.chain import (
    Curation,
    Run,
    curation_of,
    matching_paths,
    measurements_pattern,
)
from pipeline.report.consent_counts import ConsentRow, PurgeRow, consent_rows, purge_rows
from pipeline.report.truth import (
    EXAMPLE_COLUMNS,
    GroundTruthResult,
    QualityCounter,
    SmallestUids,
    read_ground_truth,
    reason_family,
)

# The download's outcome is no judgment of the pair: its failures come after ALIGN's rules.
DOWNLOAD_RULE = "download"
LANGUAGE_RULE = "language"
MEASUREMENT_COLUMNS = [
    *EXAMPLE_COLUMNS,
    "kept",
    "n_unigrams",
    "language",
    "original_width",
    "original_height",
    "sha256",
]
TOP_K = 20
EXAMPLES_PER_RULE = 4  # rejected first by a reason
EXAMPLES_PER_VERDICT = 3  # flagged rightly, and clean pairs flagged, with a ground truth
FREQUENT_CAPACITY = 100_000  # distinct keys held while counting; exact below this
THUMBNAIL_SIDE = 128


def rule_of(reason: str) -> str:
    """The filter rule (as stats.json's "rules" names it) that gives a reason."""
    try:
        return rule_table.rule_of(reason).name
    except KeyError:
        return reason_family(reason)


@dataclass
class Histogram:
    """Counts over fixed bins; the last bin holds everything at or above its left edge."""

    edges: np.ndarray
    counts: np.ndarray = None
    kept: np.ndarray = None

    def __post_init__(self) -> None:
        self.counts = np.zeros(len(self.edges) - 1, dtype=np.int64)
        self.kept = np.zeros(len(self.edges) - 1, dtype=np.int64)

    def add(self, values: np.ndarray, kept: np.ndarray) -> None:
        finite = np.isfinite(values)
        values, kept = values[finite], kept[finite]
        clipped = np.clip(values, self.edges[0], np.nextafter(self.edges[-1], -np.inf))
        self.counts += np.histogram(clipped, self.edges)[0]
        self.kept += np.histogram(clipped[kept], self.edges)[0]

    @property
    def total(self) -> int:
        return int(self.counts.sum())


@dataclass
class FrequentEntry:
    key: str
    count: int
    kept: int
    example_uid: str
    example_alt: str | None = None


@dataclass
class Frequent:
    """Most frequent keys in bounded memory (exact unless more than ``capacity`` distinct keys).

    After each batch, when more than ``capacity`` keys are held, the least frequent are
    dropped and the largest dropped count is added to ``error``: every reported count is
    then at most ``error`` below the true one (lossy counting).
    """

    capacity: int = FREQUENT_CAPACITY
    entries: dict[str, list] = field(default_factory=dict)
    error: int = 0

    def add(self, table: pa.Table, key: str) -> None:
        table = table.filter(pc.is_valid(table.column(key)))
        if not table.num_rows:
            return
        grouped = table.group_by(key).aggregate(
            [("uid", "min"), ("uid", "count"), ("kept", "sum"), ("alt", "min")]
        )
        for name, uid, count, kept, alt in zip(
            *(grouped.column(c).to_pylist() for c in (key, "uid_min", "uid_count", "kept_sum")),
            grouped.column("alt_min").to_pylist(),
            strict=True,
        ):
            entry = self.entries.get(name)
            if entry is None:
                self.entries[name] = [count, kept, uid, alt]
            else:
                entry[0] += count
                entry[1] += kept
                entry[2], entry[3] = min((entry[2], entry[3]), (uid, alt))
        if len(self.entries) > self.capacity:
            ranked = sorted(self.entries.items(), key=lambda item: (-item[1][0], item[0]))
            self.error += ranked[self.capacity][1][0]
            self.entries = dict(ranked[: self.capacity])

    def top(self, k: int = TOP_K, min_count: int = 1) -> list[FrequentEntry]:
        """The k most frequent keys seen at least min_count times, ties by key."""
        ranked = sorted(self.entries.items(), key=lambda item: (-item[1][0], item[0]))
        return [FrequentEntry(key, *values) for key, values in ranked[:k] if values[0] >= min_count]


@dataclass
class ReportData:
    stats: dict  # the last run's stats.json, with the counts of the whole curation
    reasons: list[str]  # every reason seen: ALIGN's rules in the table's order, then download
    first: dict[str, int]
    any: dict[str, int]
    alt_length: Histogram
    shorter_side: Histogram
    aspect: Histogram
    languages: Counter  # detected language -> records, in languages_run
    languages_unmeasured: int  # records of languages_run the language rule did not run on
    languages_run: Run  # the run whose language detection the report shows
    top_alts: list[FrequentEntry]
    top_images: list[FrequentEntry]
    frequent_error: int
    image_key: str  # "sha256" or "url"
    examples: dict[str, list[dict]]  # rejected first by each reason, the smallest uids
    thumbnails: dict[str, bytes]
    ground_truth: GroundTruthResult | None
    curation: Curation  # the runs: upstream filter runs, the download, this run
    rows_read: dict[str, int] = field(default_factory=dict)  # per run folder
    consent: list[ConsentRow] = field(default_factory=list)  # pipeline/report/consent_counts.py
    purges: list[PurgeRow] = field(default_factory=list)

    @property
    def kept_fraction(self) -> float:
        return self.stats["kept"] / self.stats["in"] if self.stats["in"] else 0.0

    @property
    def has_images(self) -> bool:
        return self.shorter_side.total > 0

    @property
    def unapplied_rules(self) -> list[rule_table.Rule]:
        """ALIGN's rules of the last run's mode that did not run for want of an input (an
        NSFW model, evaluation images, a language list); opt-in rules of our own are not
        missed."""
        applied = set(self.stats.get("rules", []))
        return [
            rule
            for rule in rule_table.rules_for(self.stats.get("mode", ""), GIVEN_BY)
            if rule.needs and rule.align and rule.name not in applied
        ]


def ordered_reasons(stats: dict) -> list[str]:
    """ALIGN's rules in the table's order, then the download's failures (why an image could
    not be had, no judgment of the pair), then any reason no rule gives, by name."""
    seen = set(stats.get("rejected", {}))
    seen |= {key[4:] for key in stats.get("counts", {}) if key.startswith("any/")}
    table = rule_table.RULES

    def position(reason: str) -> tuple:
        try:
            rule = rule_table.rule_of(reason)
        except KeyError:
            return (2, 0, reason)
        return (int(rule.name == DOWNLOAD_RULE), table.index(rule), reason)

    return sorted(seen, key=position)


def histogram_edges(config: dict) -> dict[str, np.ndarray]:
    """Fixed bins wide enough to show each threshold with room on both sides."""
    max_unigrams = int(config.get("max_unigrams", 20))
    min_side = int(config.get("min_shorter_side", 200))
    max_aspect = float(config.get("max_aspect_ratio", 3.0))
    side_top = max(800, 4 * min_side)
    aspect_top = max(6.0, 2 * max_aspect)
    return {
        "alt_length": np.arange(0, max(40, 2 * max_unigrams) + 2) - 0.5,
        # Edges at .5 so an integer threshold (keep > 200) falls between two bins.
        "shorter_side": np.linspace(0, side_top + side_top / 40, 42) + 0.5,
        "aspect": np.round(np.arange(1.0, aspect_top + 0.15, 0.1), 6),
    }


def _numpy(table: pa.Table, name: str, dtype=np.float64) -> np.ndarray:
    if name not in table.column_names:
        return np.full(table.num_rows, np.nan)
    return table.column(name).to_numpy(zero_copy_only=False).astype(dtype)


def _image_values(table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    width = _numpy(table, "original_width")
    height = _numpy(table, "original_height")
    with np.errstate(divide="ignore", invalid="ignore"):
        shorter = np.fmin(width, height)
        aspect = np.fmax(width, height) / shorter
    aspect[shorter <= 0] = np.inf  # a zero side is the most extreme aspect of all
    return shorter, aspect


def input_images_pattern(stats: dict) -> str | None:
    """The downloaded images the run read (a dir of images-*.parquet, or a glob)."""
    source = stats.get("input")
    if not source or stats.get("mode") == "text":
        return None
    if any(char in source for char in "*?[") or source.endswith(".parquet"):
        return source
    return FileSystems.join(source, "images-*.parquet")


def _first_reason_examples(examples: SmallestUids, table: pa.Table) -> None:
    """Adds a batch's rejected rows to the examples of the first reason each failed."""
    rejected = table.filter(pc.invert(table.column("kept")))
    if not rejected.num_rows:
        return
    first = pc.list_element(rejected.column("reasons"), 0)
    shown = rejected.select([name for name in EXAMPLE_COLUMNS if name in table.column_names])
    for reason in pc.unique(first).to_pylist():
        if reason is not None:
            examples.add(reason, shown.filter(pc.equal(first, reason)))


def language_run(curation: Curation) -> Run:
    """The run whose language detection saw the most records: the first to apply the rule
    (a later run reads only what it kept), else the last."""
    return next(
        (run for run in curation.filter_runs if LANGUAGE_RULE in run.stats.get("rules", [])),
        curation.final,
    )


def _gather_measurements(curation: Curation, stats: dict, ground_truth: pa.Table | None):
    """One pass over the measurements of the curation's filter runs."""
    edges = histogram_edges(stats.get("config", {}))
    alt_length = Histogram(edges["alt_length"])
    shorter_side = Histogram(edges["shorter_side"])
    aspect = Histogram(edges["aspect"])
    languages: Counter = Counter()
    unmeasured = 0
    alts, images = Frequent(), Frequent()
    examples = SmallestUids(EXAMPLES_PER_RULE)
    applied = stats.get("rules", [])
    quality = QualityCounter(ground_truth, EXAMPLES_PER_VERDICT, applied) if ground_truth else None
    # Images are the same picture when their bytes are; before download only the URL is known.
    image_key = "url" if stats.get("mode") == "text" else "sha256"
    rows_read: Counter = Counter()
    detected_by = language_run(curation)
    for run, table in curation.measurements(MEASUREMENT_COLUMNS):
        rows_read[run.folder] += table.num_rows
        if "kept" not in table.column_names:
            raise UsageError(f"{measurements_pattern(run.folder)} has no 'kept' column")
        if run is detected_by and "language" in table.column_names:
            column = table.column("language")
            unmeasured += column.null_count
            counts = pc.value_counts(column.drop_null())
            languages.update({item["values"]: item["counts"] for item in counts.to_pylist()})
        table = curation.leaving(run, table)  # from here on, each record of the curation once
        kept = _numpy(table, "kept", bool)
        table = table.set_column(table.schema.get_field_index("kept"), "kept", pa.array(kept))
        alt_length.add(_numpy(table, "n_unigrams"), kept)
        shorter, ratio = _image_values(table)
        shorter_side.add(shorter, kept)
        aspect.add(ratio, kept)
        alts.add(table, "alt")
        images.add(table, image_key)
        _first_reason_examples(examples, table)
        if quality is not None:
            quality.add(table)
    return {
        "alt_length": alt_length,
        "shorter_side": shorter_side,
        "aspect": aspect,
        "languages": languages,
        "languages_unmeasured": unmeasured,
        "languages_run": detected_by,
        "top_alts": alts.top(min_count=2),
        "top_images": images.top(min_count=2),
        "frequent_error": max(alts.error, images.error),
        "image_key": image_key,
        "examples": examples,
        "ground_truth": quality.result() if quality is not None else None,
        "rows_read": dict(rows_read),
    }


def thumbnail(data: bytes, side: int = THUMBNAIL_SIDE) -> bytes | None:
    """A JPEG no larger than side x side, or None when the bytes are not an image."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.draft("RGB", (side, side))
            small = image.convert("RGB")
            small.thumbnail((side, side))
            buffer = io.BytesIO()
            small.save(buffer, format="JPEG", quality=85)
            return buffer.getvalue()
    except (OSError, ValueError, Image.DecompressionBombError):
        return None


def read_thumbnails(pattern: str | None, uids: set[str]) -> dict[str, bytes]:
    """Thumbnails of a few uids, reading image bytes only of the row groups that hold them."""
    if not pattern or not uids or not matching_paths(pattern):
        return {}
    wanted = pa.array(sorted(uids))
    thumbnails: dict[str, bytes] = {}
    for path in matching_paths(pattern):
        with FileSystems.open(path) as handle:
            parquet = pq.ParquetFile(handle)
            if "image" not in parquet.schema_arrow.names:
                return {}
            for group in range(parquet.num_row_groups):
                ids = parquet.read_row_group(group, columns=["uid"]).column("uid")
                if not pc.any(pc.is_in(ids, value_set=wanted)).as_py():
                    continue
                table = parquet.read_row_group(group, columns=["uid", "image"])
                table = table.filter(pc.is_in(table.column("uid"), value_set=wanted))
                uids_here, images = (
                    table.column("uid").to_pylist(),
                    table.column("image").to_pylist(),
                )
                for uid, data in zip(uids_here, images, strict=True):
                    small = thumbnail(data) if data else None
                    if small is not None:
                        thumbnails.setdefault(uid, small)
    return thumbnails


def gather(output_dir: str, ground_truth: str | None = None) -> ReportData:
    """Everything the report shows about the curation that ended in the filter run in
    output_dir: its own rules and those of the filter runs upstream of it."""
    curation = curation_of(output_dir)
    stats = curation.stats()
    truth = read_ground_truth(ground_truth) if ground_truth else None
    reasons = ordered_reasons(stats)
    measured = _gather_measurements(curation, stats, truth)
    first_examples = measured.pop("examples")
    examples = {reason: first_examples.get(reason) for reason in reasons}
    wanted = {row["uid"] for rows in examples.values() for row in rows}
    wanted |= {entry.example_uid for entry in measured["top_images"]}
    if measured["ground_truth"] is not None:
        for rule in measured["ground_truth"].rules:
            wanted |= {row["uid"] for row in rule.right + rule.clean}
        position = {
            reason_family(reason): index for index, reason in reversed(list(enumerate(reasons)))
        }  # rules in the order the report lists reasons
        measured["ground_truth"].rules.sort(key=lambda rule: position.get(rule.rule, len(reasons)))
    thumbnails = read_thumbnails(input_images_pattern(curation.final.stats), wanted)
    counts = stats.get("counts", {})
    return ReportData(
        stats=stats,
        reasons=reasons,
        first={reason: int(stats.get("rejected", {}).get(reason, 0)) for reason in reasons},
        any={reason: int(counts.get(f"any/{reason}", 0)) for reason in reasons},
        examples=examples,
        thumbnails=thumbnails,
        curation=curation,
        consent=consent_rows(curation, truth),
        purges=purge_rows(curation),
        **measured,
    )
