"""ALIGN keeps alt-texts of 3 to 20 unigrams: shorter ones say too little about the image,
longer ones are rarely descriptions."""

from __future__ import annotations

from filters.rule import ALL, N_UNIGRAMS, RECORD, TEXT, Rule, Threshold, Verdict, integer

ALT_TOO_SHORT = "alt_too_short"
ALT_TOO_LONG = "alt_too_long"


def check_length(n_unigrams: int, min_unigrams: int, max_unigrams: int) -> Verdict:
    if n_unigrams < min_unigrams:
        return ALT_TOO_SHORT, f"n_unigrams={n_unigrams}"
    if n_unigrams > max_unigrams:
        return ALT_TOO_LONG, f"n_unigrams={n_unigrams}"
    return None


def _ordered(config) -> str | None:
    if config.max_unigrams < config.min_unigrams:
        return "max_unigrams must be >= min_unigrams"
    return None


RULE = Rule(
    name="alt_length",
    order=20,
    reasons=(ALT_TOO_SHORT, ALT_TOO_LONG),
    measures="unigrams in the normalised alt-text",
    stage=RECORD,
    modes=(TEXT, ALL),
    check=check_length,
    thresholds=(
        # "alt-texts ... with less than 3 unigrams or more than 20 unigrams" are dropped.
        Threshold("min_unigrams", 3, "fewest unigrams kept", integer(0)),
        Threshold("max_unigrams", 20, "most unigrams kept", integer(0)),
    ),
    inputs=(N_UNIGRAMS,),
    targets={ALT_TOO_SHORT: "noise_too_short", ALT_TOO_LONG: "noise_too_long"},
    consistent=_ordered,
)
