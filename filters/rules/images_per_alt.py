"""ALIGN drops an alt-text shared by more than 10 distinct images: it is boilerplate ("image",
"click to enlarge"), not a description of any one of them."""

from __future__ import annotations

from filters.rule import (
    ALL,
    ALT_TEXT,
    DISTINCT_COUNT,
    IMAGE,
    TEXT,
    Rule,
    Threshold,
    Verdict,
    integer,
)

ALT_SHARED = "alt_shared_by_many_images"


def check_images_per_alt(n_images: int, max_images: int) -> Verdict:
    if n_images > max_images:
        return ALT_SHARED, f"images_per_alt>={n_images}"
    return None


RULE = Rule(
    name="images_per_alt",
    order=50,
    reasons=(ALT_SHARED,),
    measures="distinct images (content hash, else URL) sharing the normalised alt-text",
    stage=DISTINCT_COUNT,
    modes=(TEXT, ALL),
    check=check_images_per_alt,
    thresholds=(
        # "alt-texts that are shared by more than 10 images" are dropped.
        Threshold("max_images_per_alt", 10, "most images an alt-text may describe", integer(1)),
    ),
    counts=(ALT_TEXT, IMAGE),
    targets={ALT_SHARED: "noise_boilerplate_alt"},
)
