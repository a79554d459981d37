"""The ingest's row rules: Arrow's fast paths give exactly what the crawl's Python functions
give, so a pair has one uid whichever job made it; every bad row gets its reasons."""

import random

import pyarrow as pa
import pytest

from pipeline.ingest.clean import clean, clean_urls, normalise_captions, pair_schema, uids
from pipeline.pairs import normalise_alt, resolve_url
from pipeline.records import make_uid

# Characters that trip URL parsing and whitespace handling: ASCII controls and whitespace,
# \x1c-\x1f (str.split() splits on them), C1 controls, Unicode spaces, userinfo, IPv6, ports.
PIECES = ["http://", "HTTPS://", "ftp://", "//", "a", "B", "-", ".", ":", "8080", "99999", "@",
          "[::1]", "/", "?q=1", "#f", " ", "\t", "\n", "\r", "\x0b", "\x0c", "\x1c", "\x1f",
          "\x00", "\x07", "\x7f", "\x85", "\xa0", "\u2003", "\u200b", "é", "%", "<",
          "\ufffd"]  # fmt: skip


def hostile_strings(count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choices(PIECES, k=rng.randint(0, 8))) for _ in range(count)]


def python_url(value: str | None) -> str | None:
    return resolve_url("", value)[0] if value is not None else None


def test_urls_are_what_the_crawls_resolve_url_gives():
    values = hostile_strings(5000) + ["http://a.b/c", "http://u@h/x", "http://h:99999/"] + [None]
    urls, reasons = clean_urls(pa.array(values, pa.string()))
    for value, url, reason in zip(values, urls.to_pylist(), reasons.to_pylist(), strict=True):
        expected = python_url(value)
        assert (url if reason is None else None) == expected, repr(value)


def test_captions_are_what_the_crawls_normalise_alt_gives():
    values = hostile_strings(5000, seed=1) + [None]
    got = normalise_captions(pa.array(values, pa.string())).to_pylist()
    assert got == [normalise_alt(v) if v is not None else None for v in values]


def test_uids_are_make_uid():
    urls, alts = ["http://a/é.jpg", "http://b/x"], ["café \U0001f600", "two words"]
    assert uids(pa.array(urls), pa.array(alts)).to_pylist() == [
        make_uid(u, a) for u, a in zip(urls, alts, strict=True)
    ]


@pytest.mark.parametrize(
    "url, caption, reasons",
    [
        (None, "a dog", ["no_url"]),
        (" \t", "a dog", ["no_url"]),
        ("ftp://a/b.jpg", "a dog", ["bad_url"]),
        ("http://a b/x.jpg", "a dog", ["bad_url"]),
        ("http://a/x.jpg", None, ["empty_caption"]),
        ("http://a/x.jpg", " \x00\u2003 ", ["empty_caption"]),
        ("not a url", "", ["bad_url", "empty_caption"]),
    ],
)
def test_a_bad_row_is_rejected_with_every_reason_it_fails(url, caption, reasons):
    raw = pa.table({"url": [url], "caption": [caption], "source": ["f@0"]}, schema=RAW)
    pairs, rejects, tally = clean(raw, pair_schema([]))
    assert pairs.num_rows == 0 and rejects.column("reasons").to_pylist() == [reasons]
    assert rejects.column("url").to_pylist() == [url] and tally["rejected/" + reasons[0]] == 1


RAW = pa.schema([("url", pa.string()), ("caption", pa.string()), ("source", pa.string())])


def test_kept_rows_carry_their_extras_with_the_shards_types():
    raw = pa.table(
        {"url": [" http://a/x.jpg\n"], "caption": ["  a   dog "], "source": ["f#0"], "s": [0.5]}
    )
    schema = pair_schema([pa.field("s", pa.float64())])
    pairs, rejects, tally = clean(raw, schema)
    assert pairs.schema == schema and rejects.num_rows == 0
    assert pairs.to_pylist() == [
        {"uid": make_uid("http://a/x.jpg", "a dog"), "url": "http://a/x.jpg", "alt": "a dog",
         "page_url": None, "source": "f#0", "s": 0.5}
    ]  # fmt: skip
    assert tally == {"in": 1, "pairs/valid": 1}
