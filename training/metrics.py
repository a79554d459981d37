"""Retrieval and zero-shot metrics in pure NumPy, streamed in blocks so no N x M matrix is held.

Ranks are 1-based. **Tie rule (pessimistic):** a positive's rank is one plus the number of
*negative* candidates whose score is greater than **or equal to** the best positive's score.
Ties therefore count against the model, so a collapsed model that gives every candidate the
same score is ranked last, never first; other positives never push a positive down (with
several captions per image, the best caption counts, as in the papers). When no scores tie,
this is exactly the rank from sorting the scores in descending order.

Scores are cosine similarities of the float32 embeddings given (callers normalise them).
Each (query block, candidate block) score tile is computed by the same matmul in both passes,
so a positive's score and the negatives it is compared with come from the same arithmetic.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np

DEFAULT_KS = (1, 5, 10)
QUERY_BLOCK = 1024
CANDIDATE_BLOCK = 65536


def _blocks(n: int, size: int) -> Iterator[slice]:
    for start in range(0, n, size):
        yield slice(start, min(start + size, n))


def _positive_pairs(
    positives: Sequence[Sequence[int]], n_candidates: int
) -> tuple[np.ndarray, np.ndarray]:
    """(query, candidate) index pairs, ordered by query, after checking every query has one."""
    lists = [np.asarray(p, dtype=np.int64).reshape(-1) for p in positives]
    sizes = np.array([items.size for items in lists], dtype=np.int64)
    if (sizes == 0).any():
        raise ValueError(f"query {int(np.argmax(sizes == 0))} has no positive candidate")
    queries = np.repeat(np.arange(len(lists), dtype=np.int64), sizes)
    candidates = np.concatenate(lists) if lists else np.zeros(0, np.int64)
    outside = (candidates < 0) | (candidates >= n_candidates)
    if outside.any():
        query = int(queries[np.argmax(outside)])
        raise ValueError(f"query {query} has a positive outside 0..{n_candidates - 1}")
    return queries, candidates


def _tile_positives(
    pairs: tuple[np.ndarray, np.ndarray], rows: slice, cols: slice
) -> tuple[np.ndarray, np.ndarray]:
    """(row, column) indices, local to the tile, of the positives that fall inside it."""
    queries, candidates = pairs
    lo, hi = np.searchsorted(queries, [rows.start, rows.stop])
    q, c = queries[lo:hi], candidates[lo:hi]
    inside = (c >= cols.start) & (c < cols.stop)
    return q[inside] - rows.start, c[inside] - cols.start


def positive_ranks(
    queries: np.ndarray,
    candidates: np.ndarray,
    positives: Sequence[Sequence[int]],
    query_block: int = QUERY_BLOCK,
    candidate_block: int = CANDIDATE_BLOCK,
) -> np.ndarray:
    """Rank of each query's best positive among all candidates (pessimistic ties, 1-based).

    ``positives[q]`` lists the candidate indices that match query ``q``. Memory is one
    ``query_block x candidate_block`` score tile; when the candidates fit in one block each
    tile is computed once, otherwise twice (best positive first, then the negatives above it).
    """
    queries = np.asarray(queries, dtype=np.float32)
    candidates = np.asarray(candidates, dtype=np.float32)
    if queries.ndim != 2 or candidates.ndim != 2 or queries.shape[1] != candidates.shape[1]:
        raise ValueError(
            f"embeddings must be [N, D] and [M, D], got {queries.shape} and {candidates.shape}"
        )
    if len(positives) != len(queries):
        raise ValueError(f"{len(queries)} queries but {len(positives)} positive lists")
    pairs = _positive_pairs(positives, len(candidates))
    ranks = np.empty(len(queries), dtype=np.int64)
    col_blocks = list(_blocks(len(candidates), candidate_block))
    for rows in _blocks(len(queries), query_block):
        ranks[rows] = _rank_block(queries[rows], candidates, pairs, rows, col_blocks)
    return ranks


def _rank_block(
    block: np.ndarray,
    candidates: np.ndarray,
    pairs: tuple[np.ndarray, np.ndarray],
    rows: slice,
    col_blocks: list[slice],
) -> np.ndarray:
    def tiles():
        for cols in col_blocks:
            yield block @ candidates[cols].T, *_tile_positives(pairs, rows, cols)

    first = list(tiles()) if len(col_blocks) == 1 else None
    best = np.full(len(block), -np.inf, dtype=np.float32)
    for tile, r, c in first or tiles():
        np.maximum.at(best, r, tile[r, c])
    above = np.zeros(len(block), dtype=np.int64)
    for tile, r, c in first or tiles():
        tile[r, c] = -np.inf  # positives never count against their query
        above += np.count_nonzero(tile >= best[:, None], axis=1)
    return above + 1


def retrieval_ranks(
    image_embeddings: np.ndarray,
    text_embeddings: np.ndarray,
    text_image: Sequence[int],
    query_block: int = QUERY_BLOCK,
    candidate_block: int = CANDIDATE_BLOCK,
) -> tuple[np.ndarray, np.ndarray]:
    """(image->text ranks [N], text->image ranks [M]); ``text_image[t]`` is caption t's image.

    Image->text: an image's rank is the best rank among its captions. Text->image: a
    caption's rank is the rank of its own image.
    """
    text_image = np.asarray(text_image, dtype=np.int64)
    n_images = len(image_embeddings)
    if len(text_image) != len(text_embeddings):
        raise ValueError(f"{len(text_embeddings)} captions but {len(text_image)} image indices")
    if text_image.size and (text_image.min() < 0 or text_image.max() >= n_images):
        raise ValueError(f"a caption points outside images 0..{n_images - 1}")
    order = np.argsort(text_image, kind="stable")
    captions_of = np.split(order, np.searchsorted(text_image[order], np.arange(1, n_images)))
    kw = {"query_block": query_block, "candidate_block": candidate_block}
    i2t = positive_ranks(image_embeddings, text_embeddings, captions_of, **kw)
    t2i = positive_ranks(text_embeddings, image_embeddings, text_image[:, None], **kw)
    return i2t, t2i


def recall_at_k(ranks: np.ndarray, ks: Sequence[int] = DEFAULT_KS) -> dict[str, float]:
    """Fraction of queries whose rank is at most K, for each K."""
    ranks = np.asarray(ranks)
    return {f"R@{k}": float(np.mean(ranks <= k)) if ranks.size else 0.0 for k in ks}


def rank_summary(ranks: np.ndarray) -> dict[str, float]:
    ranks = np.asarray(ranks, dtype=np.float64)
    if not ranks.size:
        return {"mean_rank": 0.0, "median_rank": 0.0}
    return {"mean_rank": float(ranks.mean()), "median_rank": float(np.median(ranks))}


def hit_chance(n_candidates: int, n_positives: int, k: int) -> float:
    """Probability that a uniformly random ranking puts one of ``n_positives`` in the top k.

    1 - C(M - c, k) / C(M, k), exact; for one positive it is k / M.
    """
    k = min(k, n_candidates)
    if n_candidates - n_positives < k:
        return 1.0
    miss = 1.0
    for i in range(k):
        miss *= (n_candidates - n_positives - i) / (n_candidates - i)
    return 1.0 - miss


def expected_random_rank(n_candidates: int, n_positives: int) -> float:
    """Mean best rank of ``n_positives`` among ``n_candidates`` under a random ranking."""
    return (n_candidates + 1) / (n_positives + 1)


def retrieval_metrics(
    image_embeddings: np.ndarray,
    text_embeddings: np.ndarray,
    text_image: Sequence[int],
    ks: Sequence[int] = DEFAULT_KS,
) -> dict:
    """Image->text and text->image R@K and mean/median rank, each with its chance level.

    Chance is exact for a uniformly random ranking: image->text R@K averages
    1 - C(M - c_i, K) / C(M, K) over images with c_i captions among M; text->image R@K is
    K / N; chance mean rank is (M + 1) / (c_i + 1) (averaged) and (N + 1) / 2.
    """
    i2t, t2i = retrieval_ranks(image_embeddings, text_embeddings, text_image)
    n_images, n_texts = len(image_embeddings), len(text_embeddings)
    per_image = np.bincount(np.asarray(text_image, dtype=np.int64), minlength=n_images)
    chance_i2t = {
        f"R@{k}": float(np.mean([hit_chance(n_texts, c, k) for c in per_image])) for k in ks
    }
    chance_i2t["mean_rank"] = float(np.mean([expected_random_rank(n_texts, c) for c in per_image]))
    chance_t2i = {f"R@{k}": hit_chance(n_images, 1, k) for k in ks}
    chance_t2i["mean_rank"] = expected_random_rank(n_images, 1)
    return {
        "images": n_images,
        "texts": n_texts,
        "image_to_text": {**recall_at_k(i2t, ks), **rank_summary(i2t), "chance": chance_i2t},
        "text_to_image": {**recall_at_k(t2i, ks), **rank_summary(t2i), "chance": chance_t2i},
    }


class ZeroShotAccumulator:
    """Streams image embeddings against fixed class embeddings, keeping only per-image results.

    Top-k uses the pessimistic tie rule: an image is a top-k hit when fewer than k other
    classes score at least as high as its true class. The top-1 prediction recorded for the
    confusion summary breaks ties the same way (against the true class, then lowest index).
    """

    def __init__(self, class_embeddings: np.ndarray, class_names: Sequence[str]):
        self.class_embeddings = np.asarray(class_embeddings, dtype=np.float32)
        self.class_names = list(class_names)
        if len(self.class_names) != len(self.class_embeddings):
            raise ValueError(
                f"{len(self.class_embeddings)} class embeddings for {len(self.class_names)} names"
            )
        self._ranks: list[np.ndarray] = []
        self._labels: list[np.ndarray] = []
        self._predictions: list[np.ndarray] = []

    def update(self, image_embeddings: np.ndarray, labels: Sequence[int]) -> None:
        labels = np.asarray(labels, dtype=np.int64)
        scores = np.asarray(image_embeddings, dtype=np.float32) @ self.class_embeddings.T
        true = scores[np.arange(len(labels)), labels]
        at_least = scores >= true[:, None]
        self._ranks.append(at_least.sum(axis=1))  # includes the true class itself: 1-based
        penalised = scores.copy()
        penalised[np.arange(len(labels)), labels] = -np.inf
        rival = penalised.argmax(axis=1) if scores.shape[1] > 1 else labels
        beaten = penalised[np.arange(len(labels)), rival] >= true
        self._predictions.append(np.where(beaten, rival, labels))
        self._labels.append(labels)

    def result(
        self,
        ks: Sequence[int] = (1, 5),
        top_confusions: int = 10,
        attributes: Sequence[str] = (),
    ) -> dict:
        return zero_shot_metrics(
            np.concatenate(self._ranks) if self._ranks else np.zeros(0, np.int64),
            np.concatenate(self._labels) if self._labels else np.zeros(0, np.int64),
            np.concatenate(self._predictions) if self._predictions else np.zeros(0, np.int64),
            self.class_names,
            ks,
            top_confusions,
            attributes,
        )


def zero_shot_metrics(
    ranks: np.ndarray,
    labels: np.ndarray,
    predictions: np.ndarray,
    class_names: Sequence[str],
    ks: Sequence[int] = (1, 5),
    top_confusions: int = 10,
    attributes: Sequence[str] = (),
) -> dict:
    """Top-k accuracy with chance (min(k, C) / C), per-class accuracy, most confused pairs.

    ``attributes`` names the words of compositional class names ("colour", "shape" for
    "red circle"); each gets its own top-1 (see ``attribute_accuracy``).
    """
    n_classes = len(class_names)
    per_class = {}
    for index, name in enumerate(class_names):
        mine = labels == index
        if mine.any():
            per_class[name] = {
                "images": int(mine.sum()),
                "top1": float(np.mean(predictions[mine] == index)),
            }
    result = {
        "images": int(len(labels)),
        "classes": n_classes,
        **{f"top{k}": float(np.mean(ranks <= k)) if len(ranks) else 0.0 for k in ks},
        "mean_per_class_top1": (
            float(np.mean([v["top1"] for v in per_class.values()])) if per_class else 0.0
        ),
        "chance": {f"top{k}": min(k, n_classes) / n_classes for k in ks},
        "per_class": per_class,
        "confusions": confusion_summary(labels, predictions, class_names, top_confusions),
    }
    result["chance"]["mean_per_class_top1"] = 1 / n_classes
    if attributes:
        result["attributes"] = attribute_accuracy(labels, predictions, class_names, attributes)
    return result


def class_attributes(class_names: Sequence[str], attributes: Sequence[str]) -> list[list[str]]:
    """Each class name split into one word per attribute: "red circle" -> ["red", "circle"]."""
    split = [name.split() for name in class_names]
    for name, words in zip(class_names, split, strict=True):
        if len(words) != len(attributes):
            raise ValueError(
                f"class {name!r} does not split into {len(attributes)} words "
                f"({', '.join(attributes)})"
            )
    return split


def attribute_accuracy(
    labels: np.ndarray,
    predictions: np.ndarray,
    class_names: Sequence[str],
    attributes: Sequence[str],
) -> dict[str, dict[str, float]]:
    """Per attribute, the fraction of images whose top-1 class has the true class's value.

    E.g. "colour": a blue square predicted as "blue circle" counts as right. Chance is exact
    for a uniformly random top-1: the mean over images of the share of classes that have the
    image's value.
    """
    words = np.array(class_attributes(class_names, attributes), dtype=object).reshape(
        len(class_names), len(attributes)
    )
    labels, predictions = np.asarray(labels, np.int64), np.asarray(predictions, np.int64)
    result = {}
    for column, name in enumerate(attributes):
        values = words[:, column]
        hits = values[predictions] == values[labels]
        share = np.array([np.mean(values == value) for value in values])
        result[name] = {
            "top1": float(np.mean(hits)) if len(labels) else 0.0,
            "chance": float(np.mean(share[labels])) if len(labels) else 0.0,
        }
    return result


def confusion_summary(
    labels: np.ndarray, predictions: np.ndarray, class_names: Sequence[str], top: int = 10
) -> list[dict]:
    """The most frequent (true, predicted) mistakes, most frequent first, then by name."""
    wrong = labels != predictions
    pairs, counts = (
        np.unique(np.stack([labels[wrong], predictions[wrong]], axis=1), axis=0, return_counts=True)
        if wrong.any()
        else (np.zeros((0, 2)), [])
    )
    totals = np.bincount(labels, minlength=len(class_names))
    rows = [
        {
            "true": class_names[t],
            "predicted": class_names[p],
            "count": int(n),
            "fraction_of_true": float(n / totals[t]),
        }
        for (t, p), n in zip(pairs.astype(int), counts, strict=True)
    ]
    rows.sort(key=lambda row: (-row["count"], row["true"], row["predicted"]))
    return rows[:top]


def format_percent(value: float) -> str:
    return f"{100 * value:6.2f}%" if not math.isnan(value) else "   n/a"
