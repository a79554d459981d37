"""The rules against a ground truth: precision and recall per rule, and what each got wrong.

The synthetic web labels every pair with the one kind of noise it carries (tools/synthweb.py,
ground_truth.parquet), so each rule can be judged against the label it targets: how many of
the records it flagged carry that label (precision), how many of the labelled it flagged
(recall), and which clean pairs it removed by mistake (false positives, shown as examples
beside the noise it caught).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems

from commandline.flags import UsageError
from filters import table
from filters.rule import SURVIVORS
from pipeline.report.chain import matching_paths


def targets(applied: Iterable[str] = ()) -> dict[str, str]:
    """Reason (family) -> the noise label its rule targets (each rule's ``targets``). A rule
    that is not ALIGN's is judged only in runs that applied it (by rule name): without the
    score rule, mismatched captions are noise no rule targets, and the report says how many
    stayed."""
    applied = set(applied)
    return {
        reason: label
        for rule in table.RULES
        if rule.align or rule.name in applied
        for reason, label in rule.targets.items()
    }


def judged_by() -> dict[str, str]:
    """Reason (family) -> the measurement a record needs for its rule to judge it: language
    runs on the records every other rule kept; image rules need a downloaded image.
    Precision and recall count judged records."""
    return {
        reason.split("/", 1)[0]: "language" if rule.stage == SURVIVORS else "sha256"
        for rule in table.RULES
        if rule.stage == SURVIVORS or rule.needs_image
        for reason in rule.reasons
    }


# What an example row shows.
EXAMPLE_COLUMNS = ["uid", "url", "alt", "page_url", "reasons", "measured"]
RIGHT, CLEAN = "right", "clean"  # a flagged record carrying the rule's label; carrying none


def reason_family(reason: str) -> str:
    """A reason without its qualifier: 'eval_near_duplicate/zero_shot' -> 'eval_near_duplicate'."""
    return reason.split("/", 1)[0]


class SmallestUids:
    """The ``k`` rows with the smallest uids per key, over any number of batches: examples
    that are the same whatever the sharding, in memory that does not grow with the input."""

    def __init__(self, k: int):
        self.k = k
        self.rows: dict = {}

    def add(self, key, table: pa.Table) -> None:
        if not table.num_rows:
            return
        chosen = table.take(pc.sort_indices(table, [("uid", "ascending")])[: self.k])
        merged = self.rows.get(key, []) + chosen.to_pylist()
        self.rows[key] = sorted(merged, key=lambda row: row["uid"])[: self.k]

    def get(self, key) -> list[dict]:
        return self.rows.get(key, [])


@dataclass
class RuleQuality:
    """A rule judged against the noise label it targets, over records that reached the filter."""

    rule: str
    label: str
    judged: int  # records the rule could judge (judged_by)
    flagged: int  # judged records the rule failed (first or not)
    labelled: int  # judged records carrying the label
    both: int
    labelled_all: int  # records carrying the label, judged or not
    removed: int  # of those, not kept, whichever rule removed them
    flagged_noisy: int  # flagged records carrying any noise label (not only this rule's)
    right: list[dict] = field(default_factory=list)  # flagged and labelled: a few examples
    clean: list[dict] = field(default_factory=list)  # flagged and carrying no label at all

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

    @property
    def flagged_clean(self) -> int:
        """Clean pairs the rule flagged: its false positives that carry no noise at all."""
        return self.flagged - self.flagged_noisy


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

    def of(self, reason: str) -> RuleQuality | None:
        """The quality of the rule that gives this reason, if the ground truth targets it."""
        family = reason_family(reason)
        return next((rule for rule in self.rules if rule.rule == family), None)


class QualityCounter:
    """Counts, per rule, records judged, flagged, labelled and both, joined to the ground truth,
    and keeps a few examples of what it flagged rightly and of the clean pairs it flagged.

    The join key is (url, alt, page_url) when both sides have page_url (a noise label belongs
    to one <img> occurrence), else (url, alt); labels of duplicate keys are OR-ed.
    """

    def __init__(self, ground_truth: pa.Table, examples: int = 3, applied: Iterable[str] = ()):
        self.ground_truth = ground_truth
        self.labels = sorted(
            name for name in ground_truth.column_names if name.startswith("noise_")
        )
        self.truth, self.keys = None, None
        self.judged_by = judged_by()
        found = targets(applied)
        self.rules = {rule: label for rule, label in found.items() if label in self.labels}
        self.counts = {rule: np.zeros(7, dtype=np.int64) for rule in self.rules}
        self.examples = SmallestUids(examples)
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
        wanted = ["kept", "reasons", *sorted(set(self.judged_by.values())), *EXAMPLE_COLUMNS]
        for name in dict.fromkeys(wanted):
            if name in picked.column_names and name not in rows.column_names:
                rows = rows.append_column(name, picked.column(name))
        return rows

    def _mask(self, joined: pa.Table, name: str) -> np.ndarray:
        return joined.column(name).to_numpy(zero_copy_only=False).astype(bool)

    def _judged(self, joined: pa.Table, rule: str) -> np.ndarray:
        needs = self.judged_by.get(rule)
        if needs is None:
            return np.ones(joined.num_rows, dtype=bool)
        if needs not in joined.column_names:
            return np.zeros(joined.num_rows, dtype=bool)
        return pc.is_valid(joined.column(needs)).to_numpy(zero_copy_only=False)

    def add(self, table: pa.Table) -> None:
        joined = self._joined(table)
        if not joined.num_rows:
            return
        kept = self._mask(joined, "kept")
        flat = pc.list_flatten(joined.column("reasons")).to_pylist()
        parents = pc.list_parent_indices(joined.column("reasons")).to_numpy()
        noisy = np.zeros(joined.num_rows, dtype=bool)
        for label in self.labels:
            noisy |= self._mask(joined, label)
        shown = [name for name in EXAMPLE_COLUMNS if name in joined.column_names]
        for rule, label in self.rules.items():
            flagged = np.zeros(joined.num_rows, dtype=bool)
            hits = [index for index, reason in enumerate(flat) if reason_family(reason) == rule]
            flagged[parents[hits]] = True
            labelled = self._mask(joined, label)
            judged = self._judged(joined, rule)
            self.counts[rule] += [
                judged.sum(),
                (flagged & judged).sum(),
                (labelled & judged).sum(),
                (flagged & labelled & judged).sum(),
                labelled.sum(),
                (labelled & ~kept).sum(),
                (flagged & judged & noisy).sum(),
            ]
            if "uid" in shown:
                rows = joined.select(shown)
                self.examples.add((rule, RIGHT), rows.filter(flagged & judged & labelled))
                self.examples.add((rule, CLEAN), rows.filter(flagged & judged & ~noisy))
        for label, counts in self.untargeted.items():
            labelled = self._mask(joined, label)
            counts[0] += int(labelled.sum())
            counts[1] += int((labelled & kept).sum())

    def result(self) -> GroundTruthResult:
        return GroundTruthResult(
            rules=[
                RuleQuality(
                    rule,
                    self.rules[rule],
                    *(int(n) for n in self.counts[rule]),
                    right=self.examples.get((rule, RIGHT)),
                    clean=self.examples.get((rule, CLEAN)),
                )
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
    consent = ["consent", "emitted_by_crawl"]  # pipeline/report/consent_counts.py
    consent = [name for name in consent if name in table.column_names]
    return table.select([*keys, *labels, *consent])
