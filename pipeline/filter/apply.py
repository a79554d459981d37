"""Joins a batch with the flags the frequency rules sent it, applies the per-record rules,
and splits the records into kept, rejects (every failing rule, first first) and measurements.

Which rules run, in which order, and how each is called all come from the rule table
(filters/table.py): this module implements the stages, not the rules.
"""

from __future__ import annotations

import uuid
from collections import Counter

import apache_beam as beam
import pyarrow as pa
from apache_beam import pvalue
from apache_beam.io.filesystems import FileSystems

from filters.langid import batch_detector
from filters.rule import MODEL_SCORE, N_UNIGRAMS, NGRAM_RANK, RECORD, SURVIVORS, Rule
from filters.table import rule_of
from pipeline.filter.measure import gc_paused
from pipeline.records import REJECT_SCHEMA, STATUS_OK
from pipeline.shards import read_parts, read_piece, split_by_column, write_parts
from pipeline.stats import mirror_to_metrics, rejected

REJECTS = "rejects"
MEASUREMENTS = "measurements"
TALLIES = "tallies"

REJECT_OUTPUT_SCHEMA = pa.schema(
    list(REJECT_SCHEMA) + [("page_url", pa.string()), ("source", pa.string())]
)
MEASUREMENT_SCHEMA = pa.schema(
    [
        ("uid", pa.string()),
        ("url", pa.string()),
        ("alt", pa.string()),
        ("page_url", pa.string()),
        ("kept", pa.bool_()),
        ("reasons", pa.list_(pa.string())),
        ("measured", pa.list_(pa.string())),
        ("n_unigrams", pa.int32()),
        ("language", pa.string()),
        ("original_width", pa.int32()),
        ("original_height", pa.int32()),
        ("sha256", pa.string()),
    ]
)


def flag_tables(flags) -> list[pa.Table]:
    """The frequency rules send refs into scratch files (many flags); eval dedup sends its
    rare flags as tables."""
    flags = list(flags)
    tables = [flag for flag in flags if isinstance(flag, pa.Table)]
    return tables + read_parts(flag for flag in flags if not isinstance(flag, pa.Table))


SCORE_SCHEMA = pa.schema([("row", pa.uint32()), ("score", pa.float64())])


class SpillScores(beam.DoFn):
    """(route, NSFW score) -> (batch_id, ref): the scores of up to ``flush_rows`` images at a
    time written to one scratch file, a part per batch, so the join back to the batches
    shuffles a ref per batch, not a tuple per image."""

    def __init__(self, scratch: str, flush_rows: int = 50_000):
        self.scratch = scratch
        self.flush_rows = flush_rows

    def start_bundle(self) -> None:
        self.pending: list[tuple[str, int, float]] = []

    def process(self, element):
        route, score = element
        bid, row = route.rsplit("/", 1)
        self.pending.append((bid, int(row), float(score)))
        if len(self.pending) >= self.flush_rows:
            yield from self._flush()

    def finish_bundle(self):
        for element in self._flush():
            yield beam.transforms.window.GlobalWindows.windowed_value(element)

    def _flush(self) -> list:
        if not self.pending:
            return []
        bids, rows, scores = zip(*self.pending, strict=True)
        table = pa.table({"bid": bids, "row": pa.array(rows, pa.uint32()), "score": scores})
        parts = [(bid, part.cast(SCORE_SCHEMA)) for bid, part in split_by_column(table, "bid")]
        self.pending = []
        path = FileSystems.join(self.scratch, f"scores-{uuid.uuid4().hex}.arrow")
        return write_parts(parts, path)


def score_rows(refs) -> list[tuple[int, float]]:
    """(row, score) pairs of a batch from the refs SpillScores sent it."""
    return [
        (row, score)
        for table in read_parts(refs)
        for row, score in zip(table["row"].to_pylist(), table["score"].to_pylist(), strict=True)
    ]


def _column(table: pa.Table, name: str) -> list:
    if name in table.column_names:
        return table.column(name).to_pylist()
    return [None] * table.num_rows


class ApplyRules(beam.DoFn):
    """(batch_id, {"batch": [path], "flags": [...], "scores": [...]}) -> kept table, plus
    tagged rejects, measurements and tallies. The batch is read from the path MeasureBatch
    wrote it to, the frequency rules' flags and the NSFW scores from their refs."""

    def __init__(self, rules: list[Rule], config, kept_schema: pa.Schema):
        self.rules = rules
        self.config = config
        self.kept_schema = kept_schema
        self.order = {rule.name: index for index, rule in enumerate(rules)}

    def setup(self) -> None:
        self.detect = None
        self.by_reason: dict[str, Rule] = {}
        if self._staged(SURVIVORS):
            self.detect = batch_detector(self.config.language_backend, self.config.language_seed)

    def _staged(self, stage: str) -> list[Rule]:
        return [rule for rule in self.rules if rule.stage == stage]

    def _rule_of(self, reason: str) -> Rule:
        if reason not in self.by_reason:
            self.by_reason[reason] = rule_of(reason, self.rules)
        return self.by_reason[reason]

    def _params(self, rule: Rule) -> list:
        return [getattr(self.config, key) for key in rule.config_keys]

    def process(self, element):
        _, grouped = element
        flags = flag_tables(grouped["flags"])
        scores = score_rows(grouped.get("scores", ()))
        for path in grouped["batch"]:
            table = read_piece(path)
            with gc_paused():
                outputs = list(self._apply(table, flags, scores))
            yield from outputs

    def _apply(self, table: pa.Table, flags: list, scores: list):
        verdicts, languages = self._verdicts(table, flags, scores)
        kept = [not found for found in verdicts]
        yield table.filter(pa.array(kept)).select(self.kept_schema.names).cast(self.kept_schema)
        reasons = [[reason for reason, _ in found] for found in verdicts]
        measured = [[value for _, value in found] for found in verdicts]
        yield pvalue.TaggedOutput(REJECTS, self._rejects(table, kept, reasons, measured))
        yield pvalue.TaggedOutput(
            MEASUREMENTS, self._measurements(table, kept, reasons, measured, languages)
        )
        tally = Counter(
            {"kept": sum(kept), "language/detected": sum(x is not None for x in languages)}
        )
        for found in reasons:
            if found:
                tally[rejected(found[0])] += 1
                for reason in dict.fromkeys(found):
                    tally[f"any/{reason}"] += 1
        mirror_to_metrics("align-filter", tally)
        yield pvalue.TaggedOutput(TALLIES, dict(tally))

    def _verdicts(self, table: pa.Table, flags: list, scores: list):
        verdicts: list[list[tuple[str, str]]] = [[] for _ in range(table.num_rows)]
        ok = [status == STATUS_OK for status in _column(table, "status")]
        for rule in self._staged(RECORD):
            self._record_rule(rule, table, verdicts, ok)
        self._flags(flags, verdicts)
        for rule in self._staged(MODEL_SCORE):
            self._scored(rule, verdicts, ok, scores)
        for found in verdicts:
            if len(found) > 1:
                found.sort(key=lambda verdict: self.order[self._rule_of(verdict[0]).name])
        return verdicts, self._survivors(table, verdicts)

    def _record_rule(self, rule: Rule, table: pa.Table, verdicts: list, ok: list[bool]) -> None:
        """RECORD: the predicate on the record's own columns and the rule's config values."""
        params = self._params(rule)
        columns = [_column(table, name) for name in rule.inputs]
        for row, values in enumerate(zip(*columns, strict=True)):
            if rule.needs_image and (not ok[row] or None in values):
                continue
            verdict = rule.check(*values, *params)
            if verdict:
                verdicts[row].append(verdict)

    def _flags(self, flags: list, verdicts: list) -> None:
        """Flags of the joins; an NGRAM_RANK rule judges a record's n-grams together."""
        pooled: dict[tuple[str, int], list[str]] = {}
        for flag_table in flags:
            flag = flag_table.to_pydict()
            for rows, reason, value in zip(
                flag["rows"], flag["reason"], flag["measured"], strict=True
            ):
                pool = self._rule_of(reason).stage == NGRAM_RANK
                for row in dict.fromkeys(rows):  # a token twice in a row is one flag
                    if pool:
                        pooled.setdefault((reason, row), []).append(value)
                    else:
                        verdicts[row].append((reason, value))
        for (reason, row), values in pooled.items():
            verdicts[row].append(self._rule_of(reason).check(values))

    def _scored(self, rule: Rule, verdicts: list, ok: list[bool], scores: list) -> None:
        """MODEL_SCORE: the predicate on each downloaded image's best score (None: unscored)."""
        best: dict[int, float] = {}
        for row, score in scores:
            best[row] = max(score, best.get(row, score))
        params = self._params(rule)
        for row, good in enumerate(ok):
            if good:
                verdict = rule.check(best.get(row), *params)
                if verdict:
                    verdicts[row].append(verdict)

    def _survivors(self, table: pa.Table, verdicts: list) -> list[str | None]:
        """SURVIVORS: the language detector, on the records every other rule kept."""
        languages: list[str | None] = [None] * table.num_rows
        if self.detect is None:
            return languages
        (rule,) = self._staged(SURVIVORS)
        alts = table.column("alt").to_pylist()
        rows = [row for row, found in enumerate(verdicts) if not found]  # the rest: rejected
        detected = self.detect([alts[row] or "" for row in rows])  # the batch in one call
        for row, language in zip(rows, detected, strict=True):
            languages[row] = language
            verdict = rule.check(language, self.config.languages)
            if verdict:
                verdicts[row].append(verdict)
        return languages

    def _rejects(self, table, kept, reasons, measured) -> pa.Table:
        mask = pa.array([not k for k in kept])
        columns = {"reasons": pa.array(reasons, pa.list_(pa.string()))}
        columns["measured"] = pa.array(measured, pa.list_(pa.string()))
        return _assemble(table, columns, REJECT_OUTPUT_SCHEMA).filter(mask)

    def _measurements(self, table, kept, reasons, measured, languages) -> pa.Table:
        columns = {
            "kept": pa.array(kept, pa.bool_()),
            "reasons": pa.array(reasons, pa.list_(pa.string())),
            "measured": pa.array(measured, pa.list_(pa.string())),
            "language": pa.array(languages, pa.string()),
        }
        if N_UNIGRAMS in table.column_names:
            columns["n_unigrams"] = table.column(N_UNIGRAMS)
        return _assemble(table, columns, MEASUREMENT_SCHEMA)


def _assemble(table: pa.Table, computed: dict, schema: pa.Schema) -> pa.Table:
    """Columns of ``schema`` from ``computed``, else from the batch, else nulls (Arrow-side:
    the record's strings are not copied through Python)."""
    columns = []
    for field in schema:
        if field.name in computed:
            column = computed[field.name]
        elif field.name in table.column_names:
            column = table.column(field.name)
        else:
            column = pa.nulls(table.num_rows, field.type)
        columns.append(column.cast(field.type))
    return pa.Table.from_arrays(columns, schema=schema)
