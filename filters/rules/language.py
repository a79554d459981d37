"""ALIGN kept English alt-text: the detected language of an alt-text must be one of
``languages`` (filters/langid.py detects it). It runs last, on the records every other rule
kept: the detector is the costliest check per record."""

from __future__ import annotations

from collections.abc import Iterable

from commandline.flags import UsageError
from filters.langid import BACKENDS, DEFAULT_BACKEND
from filters.rule import (
    ALL,
    LANGUAGES,
    SURVIVORS,
    TEXT,
    Rule,
    Threshold,
    Valid,
    Verdict,
    integer,
    one_of,
)

LANGUAGE = "language"


def check_language(language: str, languages: Iterable[str]) -> Verdict:
    if language not in set(languages):
        return LANGUAGE, f"language={language}"
    return None


def parse_languages(value) -> tuple[str, ...]:
    """'en', 'en,fr', ['en', 'fr'] or 'all' (no language rule)."""
    if isinstance(value, str):
        value = [part.strip() for part in value.split(",") if part.strip()]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise UsageError(f"languages must be a list of codes or 'all', got {value!r}")
    if not value:
        raise UsageError("languages is empty: give codes such as 'en' or 'all'")
    return () if "all" in value else tuple(value)


CODES = Valid(lambda value: isinstance(value, tuple), "a tuple of language codes")

RULE = Rule(
    name="language",
    order=120,
    reasons=(LANGUAGE,),
    measures="the alt-text's detected language",
    stage=SURVIVORS,
    modes=(TEXT, ALL),
    check=check_language,
    thresholds=(
        # English alt-text in the paper; "all" (an empty tuple) turns the rule off.
        Threshold(
            "languages",
            ("en",),
            "codes to keep, e.g. 'en' or 'en,fr'; 'all' = off",
            CODES,
            parse=parse_languages,
            show=lambda codes: list(codes) or "all",
        ),
        # Not in the paper: which detector (fastText's lid.176, or langdetect), and
        # langdetect's seed (it is randomised; fastText is deterministic).
        Threshold("language_backend", DEFAULT_BACKEND, "the detector", one_of(BACKENDS)),
        Threshold("language_seed", 0, "langdetect's seed", integer(0)),
    ),
    needs=LANGUAGES,
    targets={LANGUAGE: "noise_non_english"},
)
