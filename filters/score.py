"""The model-as-curator rules, their pure parts: the image-text score's verdict, the job-wide
keep-fraction cut from a histogram, the uid halves of cross-fitting, and the semantic
near-duplicate verdict.

A dual encoder trained on rule-curated pairs scores each pair by the cosine of its image and
alt-text embeddings (a dot product: the export's embeddings are unit vectors). ALIGN's
frequency rules cannot see a caption that does not describe its image; this score can.

Nothing here imports TensorFlow or Beam: the filter job (pipeline/filter/score.py) runs the
model and the distributed parts; these functions decide.
"""

from __future__ import annotations

import numpy as np

LOW_SCORE = "low_image_text_score"
SEMANTIC_DUPLICATE = "semantic_duplicate"

Verdict = tuple[str, str] | None  # None keeps; otherwise (reason, what was measured)

# The histogram the keep-fraction cut is read from: cosines lie in [-1, 1]; 4000 bins put the
# cut within 0.0005 of the exact quantile, and summing two histograms is the whole combine.
HISTOGRAM_BINS = 4000
HISTOGRAM_RANGE = (-1.0, 1.0)


def uid_half(uid: str) -> int:
    """0 or 1: the parity of the uid's last hex digit. Uids are hex digests
    (pipeline/records.py: make_uid), so the halves are even, stable across runs and runners,
    and independent of the shard (which reads the first digits). The trainer computes the
    same split in its graph (training/data.py: in_uid_half)."""
    return int(uid[-1], 16) & 1


def scorer_for(uid: str, trained_halves: tuple[int | None, ...]) -> int:
    """Which model scores a pair: the only one, or under cross-fitting (two models, one
    trained on each uid half) the one that did not train on the pair's half. Any other
    combination of two models could score a pair with a model that saw it: an error."""
    if len(trained_halves) == 1:
        return 0
    if len(trained_halves) != 2 or set(trained_halves) != {0, 1}:
        raise ValueError(
            "cross-fitting needs two exports trained on uid halves 0 and 1 "
            f"(align-train --uid-half), got halves {list(trained_halves)}"
        )
    return trained_halves.index(1 - uid_half(uid))


def histogram(scores: np.ndarray) -> np.ndarray:
    """Counts of scores per fixed bin over [-1, 1] (int64 [HISTOGRAM_BINS]); scores outside the
    range (float rounding of a unit dot product) go to the end bins."""
    clipped = np.clip(np.asarray(scores, dtype=np.float64), *HISTOGRAM_RANGE)
    counts, _ = np.histogram(clipped, bins=HISTOGRAM_BINS, range=HISTOGRAM_RANGE)
    return counts.astype(np.int64)


def keep_fraction_cut(counts: np.ndarray, keep_fraction: float) -> float:
    """The score at or above which about ``keep_fraction`` of all scores lie: the lower edge
    of the bin where the count from the top first reaches that fraction (-1.0 keeps all).

    Read from the histogram of the whole job, so every worker applies one cut.
    """
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    if keep_fraction >= 1.0 or total == 0:
        return HISTOGRAM_RANGE[0]
    wanted = keep_fraction * total
    from_top = np.cumsum(counts[::-1])
    bins_kept = int(np.searchsorted(from_top, wanted, side="left")) + 1
    edges = np.linspace(*HISTOGRAM_RANGE, HISTOGRAM_BINS + 1)
    return float(edges[HISTOGRAM_BINS - min(bins_kept, HISTOGRAM_BINS)])


def check_score(score: float, min_score: float, cut: float = HISTOGRAM_RANGE[0]) -> Verdict:
    """A pair whose image and alt-text score below ``min_score``, or below the job-wide
    keep-fraction ``cut``, is dropped: its caption likely does not describe its image."""
    if score < min_score or score < cut:
        return LOW_SCORE, f"image_text_score={score:.4f} (cut {max(min_score, cut):.4f})"
    return None


def check_semantic_duplicate(similarity: float, kept_uid: str) -> Verdict:
    """A pair whose image embedding is within the threshold of a pair with a smaller uid is a
    near-duplicate of it: the one with the smallest uid of a cluster stays."""
    return SEMANTIC_DUPLICATE, f"image_cosine={similarity:.4f} to {kept_uid}"
