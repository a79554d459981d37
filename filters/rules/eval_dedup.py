"""ALIGN removes duplicates and near-duplicates of the evaluation sets' images, so the
benchmarks measure what the model learnt, not what it saw (filters/eval_index.py: the
banded pHash match)."""

from __future__ import annotations

from filters.eval_index import EVAL_DUPLICATE, EvalMatch, eval_reason
from filters.rule import ALL, EVAL_JOIN, EVAL_SETS, Rule, Threshold, Verdict, integer


def check_eval_match(match: EvalMatch | None) -> Verdict:
    if match is None:
        return None
    return eval_reason(match.set_name), match.measured()


RULE = Rule(
    name="eval_dedup",
    order=80,
    reasons=(EVAL_DUPLICATE + "/*",),
    measures="Hamming distance of the pHash to the nearest evaluation image",
    stage=EVAL_JOIN,
    modes=(ALL,),
    check=check_eval_match,
    thresholds=(
        # Ours: 8 separates resized/recompressed/cropped copies from other photos.
        Threshold(
            "eval_max_hamming", 8, "pHash distance of a near-duplicate (ours)", integer(0, 63)
        ),
    ),
    needs_image=True,
    needs=EVAL_SETS,
    targets={EVAL_DUPLICATE: "noise_eval_near_duplicate"},
)
