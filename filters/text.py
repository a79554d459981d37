"""Alt-text normalisation, unigrams and bigrams: the form every text rule sees."""

from __future__ import annotations

import hashlib
import re
import unicodedata

# Characters that carry no words but can hide or reorder them: C0/C1 controls, zero-width
# spaces and joiners, bidirectional overrides and isolates, the byte-order mark.
_INVISIBLE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
_WORD = re.compile(r"\w++(?:['\u2019]\w++)*+")  # possessive: no backtracking
_MAX_KEY_CHARS = 64


def normalize(alt: str) -> str:
    """The form every text rule sees: NFKC, invisible characters removed, spaces collapsed,
    case-folded, so "Click HERE" and "click here" count as the same alt-text."""
    if not alt.isascii():  # ASCII is already NFKC: skip the costly call for most alt-texts
        alt = unicodedata.normalize("NFKC", alt)
    return " ".join(_INVISIBLE.sub(" ", alt).split()).casefold()


def tokenize(normalized: str) -> list[str]:
    """Word tokens (letters, digits, inner apostrophes) of an already normalised text."""
    return _WORD.findall(normalized)


def unigrams(alt: str) -> list[str]:
    """Word tokens of the normalised text."""
    return tokenize(normalize(alt))


def bigrams(tokens: list[str]) -> list[str]:
    """Adjacent unigram pairs joined by one space (a space never occurs inside a unigram)."""
    return [f"{a} {b}" for a, b in zip(tokens, tokens[1:], strict=False)]


def ngrams(tokens: list[str]) -> list[str]:
    """The unigrams and bigrams the rare-token rule counts."""
    return tokens + bigrams(tokens)


def shuffle_key(text: str) -> str:
    """A bounded key for a token or alt-text: itself when short, else '#' + a 128-bit digest.

    Keeps shuffle keys small whatever the input (a 100 kB alt-text is one key of 33 chars);
    '#' cannot start a normalised token, so short and hashed keys never collide.
    """
    if len(text) <= _MAX_KEY_CHARS:
        return text
    return "#" + hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()
