"""What a rule is: one module of filters/rules/ declares one ``Rule``, which holds its
predicate, its reasons, its stage (how the filter job computes it), the ``--rules`` modes that
run it, its thresholds (each declared once, as a ``Threshold``: FilterConfig's fields, the
config flags, the docs table and the report read them) and which noise labels of the
synthetic web's ground truth it targets. filters/table.py finds every rule module.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

Verdict = tuple[str, str] | None  # None keeps; otherwise (reason, what was measured)

# How the filter job computes a rule, with what its predicate is called.
RECORD = "record"  # check(*the record's inputs, *its thresholds), per record
DISTINCT_COUNT = "distinct_count"  # check(distinct ids of the key, limit = first threshold)
NGRAM_RANK = "ngram_rank"  # n-gram totals against a rank cut; check(the record's rare n-grams)
EVAL_JOIN = "eval_join"  # pHash band join with evaluation images; check(nearest match)
MODEL_SCORE = "model_score"  # a classifier's score per image; check(score or None, threshold)
PAIR_SCORE = "pair_score"  # image-text cosine of an export; check(score, min_score, job-wide cut)
EMBEDDING_JOIN = "embedding_join"  # LSH join of the score rule's image embeddings; check(cos, uid)
SURVIVORS = "survivors"  # a detector on records every other rule kept; check(detected, codes)
STAGES = (
    RECORD, DISTINCT_COUNT, NGRAM_RANK, EVAL_JOIN, MODEL_SCORE, PAIR_SCORE, EMBEDDING_JOIN,
    SURVIVORS,
)  # fmt: skip

# The --rules modes: pairs before download, downloaded images, every downloaded image.
TEXT, ALL, NONE = "text", "all", "none"
MODES = (TEXT, ALL, NONE)

# Columns a rule can read besides the record's own: the unigram count of the normalised
# alt-text, added by the filter's measuring step.
N_UNIGRAMS = "_n_unigrams"

# What a distinct-count rule counts: the normalised alt-text; an image, by its content hash
# when it was downloaded, else by its URL; a downloaded image only (others are not counted).
ALT_TEXT, IMAGE, DOWNLOADED_IMAGE = "alt_text", "image", "downloaded_image"

# What must be given for a rule to run at all, and how a user gives it.
EVAL_SETS, NSFW_MODEL, LANGUAGES = "eval_sets", "nsfw_model", "languages"
SCORE_MODEL, SEMANTIC_DEDUP = "score_model", "semantic_dedup"
GIVEN_BY = {
    EVAL_SETS: "--eval-images",
    NSFW_MODEL: "--nsfw-model",
    SCORE_MODEL: "--score-model",
    SEMANTIC_DEDUP: "--semantic-dedup and --score-model",
    LANGUAGES: "languages other than 'all'",
}


@dataclass(frozen=True)
class Valid:
    """What values a threshold takes: a test, and the words an error shows after 'must be'."""

    test: Callable[[Any], bool]
    wants: str


def _number(value) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def integer(minimum: int, maximum: int | None = None) -> Valid:
    def test(value) -> bool:
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= minimum
        return ok and (maximum is None or value <= maximum)

    return Valid(test, f"an integer >= {minimum}" + (f" and <= {maximum}" if maximum else ""))


def positive() -> Valid:
    return Valid(lambda value: _number(value) and value > 0, "a positive number")


def within(low: float, high: float, low_open: bool = False, high_open: bool = False) -> Valid:
    """A number in an interval, e.g. within(-1, 1) -> 'a number in [-1, 1]'."""

    def test(value) -> bool:
        if not _number(value):
            return False
        above = value > low if low_open else value >= low
        return above and (value < high if high_open else value <= high)

    brackets = ("(" if low_open else "[", ")" if high_open else "]")
    return Valid(test, f"a number in {brackets[0]}{low:g}, {high:g}{brackets[1]}")


def one_of(choices) -> Valid:
    return Valid(lambda value: value in choices, f"one of {', '.join(choices)}")


def anything() -> Valid:
    return Valid(lambda value: True, "any value")


@dataclass(frozen=True)
class Threshold:
    """One config key of a rule, declared once: FilterConfig's field, --flag, docs and report."""

    name: str
    default: Any
    about: str  # why this default (the paper's words where it has them)
    valid: Valid
    parse: Callable[[Any], Any] | None = None  # a YAML/flag value -> the field's value
    show: Callable[[Any], Any] | None = None  # the field's value -> stats.json's config


@dataclass(frozen=True)
class Rule:
    name: str  # as stats.json's "rules" lists it
    order: int  # its place in the table: reasons are listed and counted in this order
    reasons: tuple[str, ...]  # reject reasons it gives; "prefix*" names a family
    measures: str  # what it measures, in words (docs, report)
    stage: str  # one of STAGES
    modes: tuple[str, ...]  # the --rules modes that run it
    check: Callable  # the predicate: a Verdict, None to keep (called as its stage says)
    thresholds: tuple[Threshold, ...] = ()  # the config keys it reads, in the order check takes
    inputs: tuple[str, ...] = ()  # RECORD: the columns passed to check, in order
    counts: tuple[str, str] | None = None  # DISTINCT_COUNT: (key, what is counted per key)
    needs_image: bool = False  # judges only records whose image was downloaded
    needs: str | None = None  # EVAL_SETS, NSFW_MODEL, SCORE_MODEL, LANGUAGES: off unless given
    align: bool = True  # one of ALIGN's rules (the report warns when one of them did not run)
    # The ground truth's noise label each of its reasons (without a "/qualifier") targets; the
    # report judges the rule against it. A rule that is not ALIGN's is judged only in runs
    # that applied it (without it, its noise is noise no rule targets).
    targets: Mapping[str, str] = field(default_factory=dict, hash=False)
    # A check across its thresholds (e.g. max >= min): an error message, or None.
    consistent: Callable[[Any], str | None] | None = field(default=None, hash=False)

    @property
    def config_keys(self) -> tuple[str, ...]:
        return tuple(threshold.name for threshold in self.thresholds)

    def gives(self, reason: str) -> bool:
        return any(
            reason.startswith(own[:-1]) if own.endswith("*") else reason == own
            for own in self.reasons
        )
