"""Not ALIGN's (SemDeDup; only with --semantic-dedup): a pair whose image embedding lies
within ``min_cosine`` of a pair with a smaller uid is a near-duplicate of it; one pair of
each group stays, the smallest uid (filters/scoring.py finds the groups)."""

from __future__ import annotations

from filters.rule import ALL, EMBEDDING_JOIN, SEMANTIC_DEDUP, Rule, Threshold, Verdict, within

SEMANTIC_DUPLICATE = "semantic_duplicate"


def check_semantic_duplicate(similarity: float, kept_uid: str, min_cosine: float) -> Verdict:
    if similarity >= min_cosine:
        return SEMANTIC_DUPLICATE, f"image_cosine={similarity:.4f} to {kept_uid}"
    return None


RULE = Rule(
    name="semantic_dedup",
    order=110,
    reasons=(SEMANTIC_DUPLICATE,),
    measures="the cosine of the image's embedding (the first --score-model's) to the "
    "nearest of a smaller uid, found in random-hyperplane LSH buckets",
    stage=EMBEDDING_JOIN,
    modes=(ALL,),
    check=check_semantic_duplicate,
    thresholds=(
        Threshold(
            "semantic_dup_cosine",
            0.95,
            "cosine at which images are near-duplicates",
            within(-1, 1, low_open=True),
        ),
    ),
    needs_image=True,
    needs=SEMANTIC_DEDUP,
    align=False,
)
