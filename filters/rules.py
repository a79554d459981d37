"""ALIGN's rules as one table: each rule declared once, beside a reference to its predicate.

A rule's name, the reasons it rejects with, what it measures, how the filter job computes it
(its stage), which ``--rules`` modes run it, its config keys and its predicate are written
here and nowhere else. The filter job (pipeline/filter) builds its steps from this table, the
report (pipeline/report/gather.py) orders and judges reasons by it, and docs/architecture.md holds
``markdown_table()`` (a test keeps them equal). Adding a rule is a predicate, a ``Rule`` in
``RULES`` and a test: a rule of an existing stage needs nothing else.

The order of RULES is the order a record's reasons are listed and a rejected record is
counted under: cheap per-record rules first, the joins next, the models, the language
detector last (it is the costliest per record and runs only on what every other rule kept).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from filters import eval_index, image, language, text
from filters import scoring as score

# How the filter job computes a rule, with what its predicate is called.
RECORD = "record"  # check(*the record's inputs, *its config values), per record
DISTINCT_COUNT = "distinct_count"  # check(distinct ids of the key, limit = first config key)
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
class Rule:
    name: str  # as stats.json's "rules" lists it
    reasons: tuple[str, ...]  # reject reasons it gives; "prefix*" names a family
    measures: str  # what it measures, in words (docs, report)
    stage: str  # one of STAGES
    modes: tuple[str, ...]  # the --rules modes that run it
    check: Callable  # the predicate: a Verdict, None to keep (called as its stage says)
    config_keys: tuple[str, ...] = ()  # FilterConfig keys it reads
    inputs: tuple[str, ...] = ()  # RECORD: the columns passed to check, in order
    counts: tuple[str, str] | None = None  # DISTINCT_COUNT: (key, what is counted per key)
    needs_image: bool = False  # judges only records whose image was downloaded
    needs: str | None = None  # EVAL_SETS, NSFW_MODEL, SCORE_MODEL, LANGUAGES: off unless given
    align: bool = True  # one of ALIGN's rules (the report warns when one of them did not run)

    def gives(self, reason: str) -> bool:
        return any(
            reason.startswith(own[:-1]) if own.endswith("*") else reason == own
            for own in self.reasons
        )


RULES: tuple[Rule, ...] = (
    Rule(
        name="download",
        reasons=("download_*",),
        measures="the download's status: ok, or why the image could not be had",
        stage=RECORD,
        modes=(ALL, NONE),
        check=image.check_download,
        inputs=("status", "error"),
    ),
    Rule(
        name="alt_length",
        reasons=(text.ALT_TOO_SHORT, text.ALT_TOO_LONG),
        measures="unigrams in the normalised alt-text",
        stage=RECORD,
        modes=(TEXT, ALL),
        check=text.check_length,
        config_keys=("min_unigrams", "max_unigrams"),
        inputs=(N_UNIGRAMS,),
    ),
    Rule(
        name="image_size",
        reasons=(image.IMAGE_TOO_SMALL,),
        measures="the shorter side of the image as served, in pixels",
        stage=RECORD,
        modes=(ALL,),
        check=image.check_size,
        config_keys=("min_shorter_side",),
        inputs=("original_width", "original_height"),
        needs_image=True,
    ),
    Rule(
        name="aspect",
        reasons=(image.EXTREME_ASPECT,),
        measures="the ratio of the image's longer side to its shorter side",
        stage=RECORD,
        modes=(ALL,),
        check=image.check_aspect,
        config_keys=("max_aspect_ratio",),
        inputs=("original_width", "original_height"),
        needs_image=True,
    ),
    Rule(
        name="images_per_alt",
        reasons=(text.ALT_SHARED,),
        measures="distinct images (content hash, else URL) sharing the normalised alt-text",
        stage=DISTINCT_COUNT,
        modes=(TEXT, ALL),
        check=text.check_images_per_alt,
        config_keys=("max_images_per_alt",),
        counts=(ALT_TEXT, IMAGE),
    ),
    Rule(
        name="alts_per_image",
        reasons=(image.IMAGE_MANY_ALTS,),
        measures="distinct normalised alt-texts of one downloaded image (content hash)",
        stage=DISTINCT_COUNT,
        modes=(ALL,),
        check=image.check_alts_per_image,
        config_keys=("max_alts_per_image",),
        counts=(DOWNLOADED_IMAGE, ALT_TEXT),
        needs_image=True,
    ),
    Rule(
        name="rare_tokens",
        reasons=(text.RARE_TOKEN,),
        measures="unigrams and bigrams outside the most frequent of the whole input",
        stage=NGRAM_RANK,
        modes=(TEXT, ALL),
        check=text.check_rare_tokens,
        config_keys=("rare_token_vocab_size", "rare_token_min_count"),
    ),
    Rule(
        name="eval_dedup",
        reasons=(eval_index.EVAL_DUPLICATE + "/*",),
        measures="Hamming distance of the pHash to the nearest evaluation image",
        stage=EVAL_JOIN,
        modes=(ALL,),
        check=eval_index.check_eval_match,
        config_keys=("eval_max_hamming",),
        needs_image=True,
        needs=EVAL_SETS,
    ),
    Rule(
        name="nsfw",
        reasons=(image.NSFW, image.NSFW_UNSCORED),
        measures="the NSFW classifier's score of the image",
        stage=MODEL_SCORE,
        modes=(ALL,),
        check=image.check_nsfw,
        config_keys=("nsfw_threshold",),
        needs_image=True,
        needs=NSFW_MODEL,
    ),
    Rule(
        name="image_text_score",
        reasons=(score.LOW_SCORE,),
        measures="the cosine of the pair's image and alt-text embeddings by a trained export "
        "(cross-fitted over uid halves with two), against a floor and a job-wide top fraction",
        stage=PAIR_SCORE,
        modes=(ALL,),
        check=score.check_score,
        config_keys=("min_score", "keep_fraction"),
        needs_image=True,
        needs=SCORE_MODEL,
        align=False,
    ),
    Rule(
        name="semantic_dedup",
        reasons=(score.SEMANTIC_DUPLICATE,),
        measures="the cosine of the image's embedding (the first --score-model's) to the "
        "nearest of a smaller uid, found in random-hyperplane LSH buckets",
        stage=EMBEDDING_JOIN,
        modes=(ALL,),
        check=score.check_semantic_duplicate,
        config_keys=("semantic_dup_cosine",),
        needs_image=True,
        needs=SEMANTIC_DEDUP,
        align=False,
    ),
    Rule(
        name="language",
        reasons=(language.LANGUAGE,),
        measures="the alt-text's detected language",
        stage=SURVIVORS,
        modes=(TEXT, ALL),
        check=language.check_language,
        config_keys=("languages", "language_backend", "language_seed"),
        needs=LANGUAGES,
    ),
)


def rule_named(name: str, rules: Iterable[Rule] | None = None) -> Rule:
    for rule in RULES if rules is None else rules:
        if rule.name == name:
            return rule
    raise KeyError(name)


def rule_of(reason: str, rules: Iterable[Rule] | None = None) -> Rule:
    """The rule that gives a reject reason; a KeyError for a reason no rule gives."""
    for rule in RULES if rules is None else rules:
        if rule.gives(reason):
            return rule
    raise KeyError(reason)


def rules_for(mode: str, given: Iterable[str] = (), rules: Iterable[Rule] | None = None) -> list:
    """The rules a mode runs, in table order; ``given`` says which of EVAL_SETS, NSFW_MODEL,
    SCORE_MODEL and LANGUAGES the run has (a rule that needs one of them is off without it)."""
    given = set(given)
    return [
        rule
        for rule in (RULES if rules is None else rules)
        if mode in rule.modes and (rule.needs is None or rule.needs in given)
    ]


def config_help() -> dict[str, str]:
    """A config key -> the rule that reads it and what that rule measures (--help)."""
    return {key: f"{rule.name}: {rule.measures}" for rule in RULES for key in rule.config_keys}


def markdown_table() -> str:
    """The table as docs/architecture.md shows it."""
    lines = [
        "| rule | rejects as | measures | stage | modes | config keys |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for rule in RULES:
        cells = [
            f"`{rule.name}`",
            ", ".join(f"`{reason}`" for reason in rule.reasons),
            rule.measures + (f" (only with {GIVEN_BY[rule.needs]})" if rule.needs else ""),
            rule.stage,
            ", ".join(rule.modes),
            ", ".join(f"`{key}`" for key in rule.config_keys) or "",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
