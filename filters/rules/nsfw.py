"""ALIGN drops pornographic images by a classifier's score (pipeline/filter/nsfw_scores.py
runs the model); an image the model could not score is dropped too, under its own reason,
rather than let through unjudged."""

from __future__ import annotations

from filters.rule import ALL, MODEL_SCORE, NSFW_MODEL, Rule, Threshold, Verdict, positive

NSFW = "nsfw"
NSFW_UNSCORED = "nsfw_unscored"


def check_nsfw(score: float | None, threshold: float) -> Verdict:
    if score is None:
        return NSFW_UNSCORED, "no score from the NSFW model"
    if score > threshold:
        return NSFW, f"nsfw_score={score:.4f}"
    return None


RULE = Rule(
    name="nsfw",
    order=90,
    reasons=(NSFW, NSFW_UNSCORED),
    measures="the NSFW classifier's score of the image",
    stage=MODEL_SCORE,
    modes=(ALL,),
    check=check_nsfw,
    thresholds=(
        Threshold("nsfw_threshold", 0.5, "score above which an image is dropped", positive()),
    ),
    needs_image=True,
    needs=NSFW_MODEL,
)
