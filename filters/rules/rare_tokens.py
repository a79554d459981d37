"""ALIGN drops an alt-text with any unigram or bigram outside the most frequent ones of the
whole input: a rare token is a typo, an identifier or a file name, not a description."""

from __future__ import annotations

from filters.rule import ALL, NGRAM_RANK, TEXT, Rule, Threshold, Verdict, integer

RARE_TOKEN = "rare_token"


def check_rare_tokens(rare: list[str]) -> Verdict:
    if rare:
        shown = ",".join(sorted(rare)[:3])
        return RARE_TOKEN, f"rare_tokens={len(rare)}:{shown[:200]}"
    return None


def rare_cut_count(histogram: dict[int, int], vocab_size: int, min_count: int) -> int:
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


RULE = Rule(
    name="rare_tokens",
    order=70,
    reasons=(RARE_TOKEN,),
    measures="unigrams and bigrams outside the most frequent of the whole input",
    stage=NGRAM_RANK,
    modes=(TEXT, ALL),
    check=check_rare_tokens,
    thresholds=(
        # "alt-texts that contain any rare token (outside of 100 million most frequent
        # unigrams and bigrams from the raw dataset)" are dropped.
        Threshold(
            "rare_token_vocab_size",
            100_000_000,
            "the most frequent n-grams kept",
            integer(1),
        ),
        # Not in the paper: for small data, an n-gram seen fewer times is rare anyway.
        Threshold(
            "rare_token_min_count", 1, "fewest occurrences of a frequent n-gram (ours)", integer(1)
        ),
    ),
    targets={RARE_TOKEN: "noise_rare_token"},
)
