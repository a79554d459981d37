"""ALIGN keeps images whose shorter side is more than 200 px (of the image as served)."""

from __future__ import annotations

from filters.rule import ALL, RECORD, Rule, Threshold, Verdict, integer

IMAGE_TOO_SMALL = "image_too_small"


def check_size(width: int, height: int, min_shorter_side: int) -> Verdict:
    shorter = min(width, height)
    if shorter <= min_shorter_side:
        return IMAGE_TOO_SMALL, f"shorter_side={shorter}"
    return None


RULE = Rule(
    name="image_size",
    order=30,
    reasons=(IMAGE_TOO_SMALL,),
    measures="the shorter side of the image as served, in pixels",
    stage=RECORD,
    modes=(ALL,),
    check=check_size,
    thresholds=(
        # "only keep images where both dimensions are larger than 200 pixels".
        Threshold("min_shorter_side", 200, "the shorter side must exceed this", integer(0)),
    ),
    inputs=("original_width", "original_height"),
    needs_image=True,
    targets={IMAGE_TOO_SMALL: "noise_small_image"},
)
