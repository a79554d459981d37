"""ALIGN keeps images with long/short side ratio below 3: banners and strips are not photos
of anything a caption describes."""

from __future__ import annotations

from filters.rule import ALL, RECORD, Rule, Threshold, Verdict, positive

EXTREME_ASPECT = "extreme_aspect"


def check_aspect(width: int, height: int, max_aspect: float) -> Verdict:
    short, long = sorted((width, height))
    if short <= 0:
        return EXTREME_ASPECT, f"aspect=inf ({width}x{height})"
    aspect = long / short
    if aspect >= max_aspect:
        return EXTREME_ASPECT, f"aspect={aspect:.3f}"
    return None


RULE = Rule(
    name="aspect",
    order=40,
    reasons=(EXTREME_ASPECT,),
    measures="the ratio of the image's longer side to its shorter side",
    stage=RECORD,
    modes=(ALL,),
    check=check_aspect,
    thresholds=(
        # "the ratio of the larger of width and height to the smaller one is no larger than
        # 3": applied as long/short < 3, the stricter reading.
        Threshold("max_aspect_ratio", 3.0, "long/short must stay below this", positive()),
    ),
    inputs=("original_width", "original_height"),
    needs_image=True,
    targets={EXTREME_ASPECT: "noise_extreme_aspect"},
)
