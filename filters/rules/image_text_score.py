"""Not ALIGN's (DataComp's CLIP-score filter, with this project's own export; only with
--score-model): a pair whose image and alt-text score below ``min_score``, or below the
job-wide keep-fraction cut, is dropped: its caption likely does not describe its image.
filters/scoring.py has the score's pure parts, pipeline/filter/score.py runs the model."""

from __future__ import annotations

from filters.rule import ALL, PAIR_SCORE, SCORE_MODEL, Rule, Threshold, Verdict, within

LOW_SCORE = "low_image_text_score"


def check_score(score: float, min_score: float, cut: float) -> Verdict:
    if score < min_score or score < cut:
        return LOW_SCORE, f"image_text_score={score:.4f} (cut {max(min_score, cut):.4f})"
    return None


RULE = Rule(
    name="image_text_score",
    order=100,
    reasons=(LOW_SCORE,),
    measures="the cosine of the pair's image and alt-text embeddings by a trained export "
    "(cross-fitted over uid halves with two), against a floor and a job-wide top fraction",
    stage=PAIR_SCORE,
    modes=(ALL,),
    check=check_score,
    thresholds=(
        # -1 and 1 turn each part off.
        Threshold("min_score", -1.0, "the floor of a pair's cosine (-1: none)", within(-1, 1)),
        Threshold(
            "keep_fraction",
            1.0,
            "the top fraction of the job's scored pairs kept",
            within(0, 1, low_open=True),
        ),
    ),
    needs_image=True,
    needs=SCORE_MODEL,
    align=False,
    targets={LOW_SCORE: "noise_mismatched_caption"},
)
