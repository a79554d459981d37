"""Retrieval ranks: the blocked, streamed metrics against the usual full-matrix argsort.

    .venv/bin/python bench/eval_metrics.py [--images 2000] [--captions-per-image 5] [--dim 256]

The peer is what evaluation scripts commonly do: build the whole images x captions similarity
matrix, argsort every row (image->text) and every column (text->image). The measured side is
training.metrics.retrieval_ranks (pessimistic ties, one score tile at a time). Both get the
same random unit embeddings; the ranks must agree exactly (random floats do not tie). Prints
seconds and peak traced memory of each, and the ratios.
"""

from __future__ import annotations

import argparse
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from training.metrics import retrieval_ranks  # noqa: E402


def full_matrix_ranks(images: np.ndarray, texts: np.ndarray, text_image: np.ndarray):
    """The peer: whole similarity matrix, full argsorts."""
    scores = images @ texts.T
    order = np.argsort(-scores, axis=1)
    position = np.empty_like(order)
    np.put_along_axis(position, order, np.arange(scores.shape[1])[None, :], axis=1)
    i2t = np.full(len(images), np.iinfo(np.int64).max)
    np.minimum.at(i2t, text_image, position[text_image, np.arange(len(texts))])
    column_order = np.argsort(-scores, axis=0)
    t2i = np.argmax(column_order == text_image[None, :], axis=0)
    return i2t + 1, t2i + 1


def measure(function, *args):
    tracemalloc.start()
    start = time.perf_counter()
    result = function(*args)
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return result, seconds, peak


def unit(rng: np.random.Generator, rows: int, dim: int) -> np.ndarray:
    x = rng.normal(size=(rows, dim)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--captions-per-image", type=int, default=5)
    parser.add_argument("--dim", type=int, default=256)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    images = unit(rng, args.images, args.dim)
    text_image = np.repeat(np.arange(args.images), args.captions_per_image)
    texts = unit(rng, len(text_image), args.dim) + 0.5 * images[text_image]  # some signal
    texts /= np.linalg.norm(texts, axis=1, keepdims=True)

    (peer_i2t, peer_t2i), peer_s, peer_mem = measure(full_matrix_ranks, images, texts, text_image)
    (i2t, t2i), ours_s, ours_mem = measure(retrieval_ranks, images, texts, text_image)
    assert np.array_equal(i2t, peer_i2t) and np.array_equal(t2i, peer_t2i), "ranks disagree"

    print(f"{args.images} images x {len(texts)} captions, dim {args.dim}; ranks identical")
    print(f"  {'method':<34}{'seconds':>10}{'peak MiB':>12}")
    print(f"  {'full matrix + argsort (peer)':<34}{peer_s:>10.2f}{peer_mem / 2**20:>12.1f}")
    print(f"  {'training.metrics (blocked)':<34}{ours_s:>10.2f}{ours_mem / 2**20:>12.1f}")
    print(f"  speed-up {peer_s / ours_s:.1f}x, memory {peer_mem / max(ours_mem, 1):.1f}x less")


if __name__ == "__main__":
    main()
