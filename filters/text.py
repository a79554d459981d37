"""Alt-text normalisation, unigrams and bigrams, and ALIGN's alt-text length rule."""

from __future__ import annotations

import hashlib
import re
import unicodedata

ALT_TOO_SHORT = "alt_too_short"
ALT_TOO_LONG = "alt_too_long"
RARE_TOKEN = "rare_token"
ALT_SHARED = "alt_shared_by_many_images"

# Characters that carry no words but can hide or reorder them: C0/C1 controls, zero-width
# spaces and joiners, bidirectional overrides and isolates, the byte-order mark.
_INVISIBLE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")
_WORD = re.compile(r"\w++(?:['\u2019]\w++)*+")  # possessive: no backtracking
_MAX_KEY_CHARS = 64

Verdict = tuple[str, str] | None  # None keeps; otherwise (reason, what was measured)


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


def check_length(n_unigrams: int, min_unigrams: int = 3, max_unigrams: int = 20) -> Verdict:
    """ALIGN keeps alt-texts of 3 to 20 unigrams: shorter ones say too little about the
    image, longer ones are rarely descriptions."""
    if n_unigrams < min_unigrams:
        return ALT_TOO_SHORT, f"n_unigrams={n_unigrams}"
    if n_unigrams > max_unigrams:
        return ALT_TOO_LONG, f"n_unigrams={n_unigrams}"
    return None


def check_images_per_alt(n_images: int, max_images: int = 10) -> Verdict:
    """ALIGN drops an alt-text shared by more than 10 distinct images: it is boilerplate
    ("image", "click to enlarge"), not a description of any one of them."""
    if n_images > max_images:
        return ALT_SHARED, f"images_per_alt>={n_images}"
    return None


def check_rare_tokens(rare: list[str]) -> Verdict:
    """ALIGN drops an alt-text with any unigram or bigram outside the frequent vocabulary."""
    if rare:
        shown = ",".join(sorted(rare)[:3])
        return RARE_TOKEN, f"rare_tokens={len(rare)}:{shown[:200]}"
    return None


def rare_cut_count(histogram: dict[int, int], vocab_size: int, min_count: int = 1) -> int:
    """The smallest count a token needs to be frequent, from {count: number of tokens}.

    "In the V most frequent" is "count >= the count of the V-th most frequent token".
    Ties at the cut are kept: every token tied with the V-th is frequent, so the cut depends
    only on counts, never on token order (deterministic; may keep slightly more than V).
    With V or fewer distinct tokens nothing is cut by rank; ``min_count`` applies either way.
    """
    seen = 0
    for count in sorted(histogram, reverse=True):
        seen += histogram[count]
        if seen >= vocab_size:
            return max(count, min_count)
    return max(min_count, 1)
