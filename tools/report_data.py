"""What the filter report shows, gathered from a finished run in one streaming pass per file set.

A run's measurements can hold billions of rows, so nothing here loads a whole table: the
Parquet shards are read batch by batch, histograms have fixed bins (the last one open-ended),
frequencies are counted in bounded memory, examples are the few smallest uids, and image
bytes are read only for the handful of uids shown as thumbnails, row group by row group.
"""

from __future__ import annotations

import io
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from PIL import Image

from filters.cli import UsageError
from filters.eval_index import EVAL_DUPLICATE
from filters.image import EXTREME_ASPECT, IMAGE_MANY_ALTS, IMAGE_TOO_SMALL
from filters.language import LANGUAGE
from filters.rules import RULES, SURVIVORS
from filters.rules import rule_of as table_rule_of
from filters.text import ALT_SHARED, ALT_TOO_LONG, ALT_TOO_SHORT, RARE_TOKEN
from pipeline.stats import read_stats

# The one table of which noise label of the synthetic web each rule targets.
RULE_TARGETS: dict[str, str] = {
    ALT_SHARED: "noise_boilerplate_alt",
    IMAGE_MANY_ALTS: "noise_reused_image",
    RARE_TOKEN: "noise_rare_token",
    ALT_TOO_SHORT: "noise_too_short",
    ALT_TOO_LONG: "noise_too_long",
    LANGUAGE: "noise_non_english",
    IMAGE_TOO_SMALL: "noise_small_image",
    EXTREME_ASPECT: "noise_extreme_aspect",
    EVAL_DUPLICATE: "noise_eval_near_duplicate",
}
# A rule judges only records with this measurement: language runs on the records every other
# rule kept; image rules need a downloaded image. Precision and recall count judged records.
JUDGED_BY: dict[str, str] = {
    reason.split("/", 1)[0]: "language" if rule.stage == SURVIVORS else "sha256"
    for rule in RULES
    if rule.stage == SURVIVORS or rule.needs_image
    for reason in rule.reasons
}

MEASUREMENT_COLUMNS = [
    "uid",
    "url",
    "alt",
    "page_url",
    "kept",
    "reasons",
    "n_unigrams",
    "language",
    "original_width",
    "original_height",
    "sha256",
]
TOP_K = 20
EXAMPLES_PER_RULE = 4
FREQUENT_CAPACITY = 100_000  # distinct keys held while counting; exact below this
THUMBNAIL_SIDE = 128
BATCH_ROWS = 65_536


def reason_family(reason: str) -> str:
    """A reason without its qualifier: 'eval_near_duplicate/zero_shot' -> 'eval_near_duplicate'."""
    return reason.split("/", 1)[0]


def rule_of(reason: str) -> str:
    """The filter rule (as stats.json's "rules" names it) that gives a reason."""
    try:
        return table_rule_of(reason).name
    except KeyError:
        return reason_family(reason)


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
class RuleQuality:
    """A rule judged against the noise label it targets, over records that reached the filter."""

    rule: str
    label: str
    judged: int  # records the rule could judge (JUDGED_BY)
    flagged: int  # judged records the rule failed (first or not)
    labelled: int  # judged records carrying the label
    both: int
    labelled_all: int  # records carrying the label, judged or not
    removed: int  # of those, not kept, whichever rule removed them
    flagged_noisy: int  # flagged records carrying any noise label (not only this rule's)

    @property
    def precision(self) -> float | None:
        return self.both / self.flagged if self.flagged else None

    @property
    def precision_any_noise(self) -> float | None:
        """Precision where flagging a record with another kind of noise is no mistake."""
        return self.flagged_noisy / self.flagged if self.flagged else None

    @property
    def recall(self) -> float | None:
        return self.both / self.labelled if self.labelled else None

    @property
    def removed_fraction(self) -> float | None:
        """Recall of the whole filter on this noise, whichever rule removed it."""
        return self.removed / self.labelled_all if self.labelled_all else None


@dataclass
class UntargetedLabel:
    """A noise kind no rule targets: how much of it the filter let through."""

    label: str
    labelled: int
    kept: int


@dataclass
class GroundTruthResult:
    rules: list[RuleQuality]
    untargeted: list[UntargetedLabel]
    matched: int  # measurement rows found in the ground truth
    unmatched: int
    keys: list[str]  # the join key


@dataclass
class ReportData:
    stats: dict
    reasons: list[str]  # every reason seen, in the order rules were applied
    first: dict[str, int]
    any: dict[str, int]
    alt_length: Histogram
    shorter_side: Histogram
    aspect: Histogram
    languages: Counter  # detected language -> records
    languages_unmeasured: int  # records the language rule did not run on
    top_alts: list[FrequentEntry]
    top_images: list[FrequentEntry]
    frequent_error: int
    image_key: str  # "sha256" or "url"
    examples: dict[str, list[dict]]
    thumbnails: dict[str, bytes]
    ground_truth: GroundTruthResult | None
    rows: int  # measurement rows read

    @property
    def kept_fraction(self) -> float:
        return self.stats["kept"] / self.stats["in"] if self.stats["in"] else 0.0

    @property
    def has_images(self) -> bool:
        return self.shorter_side.total > 0


def ordered_reasons(stats: dict) -> list[str]:
    """Reasons in the order the run applied its rules, then any other reason by name."""
    seen = set(stats.get("rejected", {}))
    seen |= {key[4:] for key in stats.get("counts", {}) if key.startswith("any/")}
    order = {rule: index for index, rule in enumerate(stats.get("rules", []))}
    return sorted(seen, key=lambda reason: (order.get(rule_of(reason), len(order)), reason))


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


def measurements_pattern(output_dir: str) -> str:
    return FileSystems.join(output_dir, "measurements", "measurements-*.parquet")


def rejects_pattern(output_dir: str) -> str:
    return FileSystems.join(output_dir, "rejects", "rejects-*.parquet")


def input_images_pattern(stats: dict) -> str | None:
    """The downloaded images the run read (a dir of images-*.parquet, or a glob)."""
    source = stats.get("input")
    if not source or stats.get("mode") == "text":
        return None
    if any(char in source for char in "*?[") or source.endswith(".parquet"):
        return source
    return FileSystems.join(source, "images-*.parquet")


def _gather_measurements(output_dir: str, stats: dict, ground_truth: pa.Table | None):
    edges = histogram_edges(stats.get("config", {}))
    alt_length = Histogram(edges["alt_length"])
    shorter_side = Histogram(edges["shorter_side"])
    aspect = Histogram(edges["aspect"])
    languages: Counter = Counter()
    unmeasured = 0
    alts, images = Frequent(), Frequent()
    quality = QualityCounter(ground_truth) if ground_truth is not None else None
    # Images are the same picture when their bytes are; before download only the URL is known.
    image_key, rows = ("url" if stats.get("mode") == "text" else "sha256"), 0
    for table in iter_batches(measurements_pattern(output_dir), MEASUREMENT_COLUMNS):
        rows += table.num_rows
        kept = _numpy(table, "kept", bool) if "kept" in table.column_names else None
        if kept is None:
            raise UsageError(f"{measurements_pattern(output_dir)} has no 'kept' column")
        table = table.set_column(table.schema.get_field_index("kept"), "kept", pa.array(kept))
        alt_length.add(_numpy(table, "n_unigrams"), kept)
        shorter, ratio = _image_values(table)
        shorter_side.add(shorter, kept)
        aspect.add(ratio, kept)
        if "language" in table.column_names:
            column = table.column("language")
            unmeasured += column.null_count
            counts = pc.value_counts(column.drop_null())
            languages.update({item["values"]: item["counts"] for item in counts.to_pylist()})
        alts.add(table, "alt")
        images.add(table, image_key)
        if quality is not None:
            quality.add(table)
    return {
        "alt_length": alt_length,
        "shorter_side": shorter_side,
        "aspect": aspect,
        "languages": languages,
        "languages_unmeasured": unmeasured,
        "top_alts": alts.top(min_count=2),
        "top_images": images.top(min_count=2),
        "frequent_error": max(alts.error, images.error),
        "image_key": image_key,
        "ground_truth": quality.result() if quality is not None else None,
        "rows": rows,
    }


def _gather_examples(output_dir: str, reasons: list[str]) -> dict[str, list[dict]]:
    """The EXAMPLES_PER_RULE smallest uids rejected first by each reason (deterministic)."""
    examples: dict[str, list[dict]] = {reason: [] for reason in reasons}
    pattern = rejects_pattern(output_dir)
    if not matching_paths(pattern):
        return examples
    for table in iter_batches(pattern, ["uid", "url", "alt", "reasons", "measured"]):
        first = pc.list_element(table.column("reasons"), 0)
        for reason in pc.unique(first).to_pylist():
            if reason is None:
                continue
            chosen = table.filter(pc.equal(first, reason))
            chosen = chosen.take(
                pc.sort_indices(chosen, [("uid", "ascending")])[:EXAMPLES_PER_RULE]
            )
            merged = examples.setdefault(reason, []) + chosen.to_pylist()
            examples[reason] = sorted(merged, key=lambda row: row["uid"])[:EXAMPLES_PER_RULE]
    return examples


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


class QualityCounter:
    """Counts, per rule, records judged, flagged, labelled and both, joined to the ground truth.

    The join key is (url, alt, page_url) when both sides have page_url (a noise label belongs
    to one <img> occurrence), else (url, alt); labels of duplicate keys are OR-ed.
    """

    def __init__(self, ground_truth: pa.Table):
        self.ground_truth = ground_truth
        self.labels = sorted(
            name for name in ground_truth.column_names if name.startswith("noise_")
        )
        self.truth, self.keys = None, None
        self.rules = {rule: label for rule, label in RULE_TARGETS.items() if label in self.labels}
        self.counts = {rule: np.zeros(7, dtype=np.int64) for rule in self.rules}
        self.untargeted = {
            label: [0, 0] for label in self.labels if label not in self.rules.values()
        }
        self.matched = self.unmatched = 0

    def _index(self, columns: list[str]) -> None:
        both = "page_url" in columns and "page_url" in self.ground_truth.column_names
        self.keys = ["url", "alt", "page_url"] if both else ["url", "alt"]
        truth = self.ground_truth.group_by(self.keys).aggregate(
            [(label, "any") for label in self.labels]
        )
        self.truth = truth.rename_columns(
            [name.removesuffix("_any") for name in truth.column_names]
        )

    def _joined(self, table: pa.Table) -> pa.Table:
        """The batch's rows found in the ground truth, with their labels, in batch order."""
        if self.truth is None:
            self._index(table.column_names)
        slim = table.select(self.keys).append_column("row", pa.array(np.arange(table.num_rows)))
        rows = slim.join(self.truth, self.keys, join_type="inner").sort_by("row")
        self.matched += rows.num_rows
        self.unmatched += table.num_rows - rows.num_rows
        picked = table.take(rows.column("row"))
        for name in ["kept", "reasons"] + sorted(set(JUDGED_BY.values())):
            if name in picked.column_names:
                rows = rows.append_column(name, picked.column(name))
        return rows

    def add(self, table: pa.Table) -> None:
        joined = self._joined(table)
        if not joined.num_rows:
            return
        kept = joined.column("kept").to_numpy(zero_copy_only=False).astype(bool)
        flat = pc.list_flatten(joined.column("reasons")).to_pylist()
        parents = pc.list_parent_indices(joined.column("reasons")).to_numpy()
        noisy = np.zeros(joined.num_rows, dtype=bool)
        for label in self.labels:
            noisy |= joined.column(label).to_numpy(zero_copy_only=False).astype(bool)
        for rule, label in self.rules.items():
            flagged = np.zeros(joined.num_rows, dtype=bool)
            hits = [index for index, reason in enumerate(flat) if reason_family(reason) == rule]
            flagged[parents[hits]] = True
            labelled = joined.column(label).to_numpy(zero_copy_only=False).astype(bool)
            needs = JUDGED_BY.get(rule)
            judged = np.ones(joined.num_rows, dtype=bool)
            if needs is not None:
                column = joined.column(needs) if needs in joined.column_names else None
                judged = (
                    np.zeros(joined.num_rows, dtype=bool)
                    if column is None
                    else pc.is_valid(column).to_numpy(zero_copy_only=False)
                )
            self.counts[rule] += [
                judged.sum(),
                (flagged & judged).sum(),
                (labelled & judged).sum(),
                (flagged & labelled & judged).sum(),
                labelled.sum(),
                (labelled & ~kept).sum(),
                (flagged & judged & noisy).sum(),
            ]
        for label, counts in self.untargeted.items():
            labelled = joined.column(label).to_numpy(zero_copy_only=False).astype(bool)
            counts[0] += int(labelled.sum())
            counts[1] += int((labelled & kept).sum())

    def result(self) -> GroundTruthResult:
        return GroundTruthResult(
            rules=[
                RuleQuality(rule, self.rules[rule], *(int(n) for n in self.counts[rule]))
                for rule in self.rules
            ],
            untargeted=[
                UntargetedLabel(label, *counts) for label, counts in self.untargeted.items()
            ],
            matched=self.matched,
            unmatched=self.unmatched,
            keys=self.keys or ["url", "alt"],
        )


def read_ground_truth(path: str) -> pa.Table:
    """The synthetic web's ground truth: url, alt and boolean noise_* columns."""
    paths = matching_paths(path)
    if not paths:
        raise FileNotFoundError(f"ground truth not found: {path}")
    tables = []
    for name in paths:
        with FileSystems.open(name) as handle:
            tables.append(pq.read_table(handle))
    table = pa.concat_tables(tables)
    missing = {"url", "alt"} - set(table.column_names)
    if missing:
        raise UsageError(f"ground truth {path} lacks column(s) {', '.join(sorted(missing))}")
    labels = [name for name in table.column_names if name.startswith("noise_")]
    keys = ["url", "alt"] + ["page_url"] * ("page_url" in table.column_names)
    return table.select([*keys, *labels])


def gather(output_dir: str, ground_truth: str | None = None) -> ReportData:
    """Everything the report shows about the finished filter run in output_dir."""
    stats = read_stats(output_dir)
    truth = read_ground_truth(ground_truth) if ground_truth else None
    reasons = ordered_reasons(stats)
    measured = _gather_measurements(output_dir, stats, truth)
    examples = _gather_examples(output_dir, reasons)
    wanted = {row["uid"] for rows in examples.values() for row in rows}
    wanted |= {entry.example_uid for entry in measured["top_images"]}
    thumbnails = read_thumbnails(input_images_pattern(stats), wanted)
    counts = stats.get("counts", {})
    if measured["ground_truth"] is not None:  # rules in the order the run applied them
        position = {
            reason_family(reason): index for index, reason in reversed(list(enumerate(reasons)))
        }
        measured["ground_truth"].rules.sort(key=lambda rule: position.get(rule.rule, len(reasons)))
    return ReportData(
        stats=stats,
        reasons=reasons,
        first={reason: int(stats.get("rejected", {}).get(reason, 0)) for reason in reasons},
        any={reason: int(counts.get(f"any/{reason}", 0)) for reason in reasons},
        examples={reason: examples.get(reason, []) for reason in reasons},
        thumbnails=thumbnails,
        **measured,
    )
