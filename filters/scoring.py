"""The model-as-curator rules' shared pure parts: the job-wide keep-fraction cut from a
histogram, the uid halves of cross-fitting, and the LSH search for semantic near-duplicates.
Their predicates are in filters/rules/image_text_score.py and semantic_dedup.py.

A dual encoder trained on rule-curated pairs scores each pair by the cosine of its image and
alt-text embeddings (a dot product: the export's embeddings are unit vectors). ALIGN's
frequency rules cannot see a caption that does not describe its image; this score can.

Nothing here imports TensorFlow or Beam: the filter job (pipeline/filter/score.py) runs the
model and the distributed parts; these functions decide.
"""

from __future__ import annotations

import numpy as np

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


# Random-hyperplane LSH for the semantic near-duplicates: a pair of images at cosine c lands
# in the same bucket of one table with probability (1 - acos(c) / pi) ** LSH_BITS: 0.31 at
# c = 0.95 with 10 bits, so 8 tables find it with probability 0.95 (1 - 0.69 ** 8).
LSH_BITS, LSH_TABLES, LSH_SEED = 10, 8, 0


def hyperplanes(dim: int, bits: int = LSH_BITS, tables: int = LSH_TABLES) -> np.ndarray:
    """float64 [tables, dim, bits]: the same planes on every worker (a fixed seed)."""
    return np.random.default_rng(LSH_SEED).standard_normal((tables, dim, bits))


def lsh_keys(embeddings: np.ndarray, planes: np.ndarray) -> np.ndarray:
    """int64 [N, tables]: each embedding's bucket in each table (its sign bits)."""
    signs = np.einsum("nd,tdb->ntb", np.asarray(embeddings, np.float64), planes) > 0
    return signs.astype(np.int64) @ (1 << np.arange(planes.shape[2], dtype=np.int64))


def near_duplicates(
    uids: list[str], embeddings: np.ndarray, min_cosine: float
) -> list[tuple[int, float, str]]:
    """(index, cosine, kept uid) of each pair whose image has a pair of smaller uid at cosine
    >= ``min_cosine``: the smallest uid of a group stays, whatever order the pairs come in."""
    vectors = np.asarray(embeddings, np.float64)
    similar = vectors @ vectors.T >= min_cosine
    order = sorted(range(len(uids)), key=uids.__getitem__)
    found = []
    for rank, index in enumerate(order):
        smaller = [other for other in order[:rank] if similar[index, other]]
        if smaller:
            kept = smaller[0]
            found.append((index, float(vectors[index] @ vectors[kept]), uids[kept]))
    return found
