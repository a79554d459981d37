"""ALIGN drops images associated with more than 1000 alt-texts (logos, spacers, icons)."""

from __future__ import annotations

from filters.rule import (
    ALL,
    ALT_TEXT,
    DISTINCT_COUNT,
    DOWNLOADED_IMAGE,
    Rule,
    Threshold,
    Verdict,
    integer,
)

IMAGE_MANY_ALTS = "image_with_many_alts"


def check_alts_per_image(n_alts: int, max_alts: int) -> Verdict:
    if n_alts > max_alts:
        return IMAGE_MANY_ALTS, f"alts_per_image>={n_alts}"
    return None


RULE = Rule(
    name="alts_per_image",
    order=60,
    reasons=(IMAGE_MANY_ALTS,),
    measures="distinct normalised alt-texts of one downloaded image (content hash)",
    stage=DISTINCT_COUNT,
    modes=(ALL,),
    check=check_alts_per_image,
    thresholds=(
        # "images associated with more than 1000 alt-texts" are dropped.
        Threshold(
            "max_alts_per_image",
            1000,
            "most alt-texts one image may have",
            integer(1),
        ),
    ),
    counts=(DOWNLOADED_IMAGE, ALT_TEXT),
    needs_image=True,
    targets={IMAGE_MANY_ALTS: "noise_reused_image"},
)
