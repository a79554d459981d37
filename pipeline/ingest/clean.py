"""The ingest's per-row rules: a URL list's rows become pairs, or rejects with a reason.

A row is rejected as ``no_url`` (none, or only blanks), ``bad_url`` (not an absolute http(s)
URL with a valid host and port) or ``empty_caption`` (nothing left once normalised); its
reasons list every rule it failed, the first one first. Kept rows get the crawl's forms, so a
pair has the same uid whichever job made it: the URL as ``resolve_url`` returns it and the
caption as ``normalise_alt`` does (control characters dropped, whitespace collapsed).

Millions of rows go through here, so the common case runs in Arrow kernels: ASCII captions
and plain ``http(s)://host[:port]/...`` URLs. Every other row (non-ASCII text, user info,
IPv6 hosts, long ports...) goes through the crawl's own Python functions; a test checks both
paths agree on hostile strings.
"""

from __future__ import annotations

import hashlib
from collections import Counter

import pyarrow as pa
import pyarrow.compute as pc

from pipeline.pairs import normalise_alt, resolve_url
from pipeline.records import PAIR_SCHEMA, REJECT_SCHEMA, make_uid
from pipeline.stats import IN, rejected

NO_URL = "no_url"
BAD_URL = "bad_url"
EMPTY_CAPTION = "empty_caption"
NOT_UTF8 = "not_utf8"  # the row's bytes are not UTF-8 (text formats)
BAD_ROW = "bad_row"  # a row the format cannot read: wrong field count, not a JSON object
DUPLICATE = "duplicate"  # the same (url, caption) on an earlier row (smallest source kept)
VALID = "pairs/valid"  # rows that passed the rules; those not kept are duplicates

REJECTS_SCHEMA = pa.schema(list(REJECT_SCHEMA) + [("source", pa.string())])

# What resolve_url strips from the ends of a URL, and removes anywhere inside it.
_URL_NOISE = "[\t\n\r]"
_URL_ENDS = " \f"
# URLs resolve_url accepts as they are: scheme, a host of letters, digits, dots and dashes,
# a port below 10000, then a path, query or fragment. Anything else is checked in Python.
_PLAIN_URL = r"^[Hh][Tt][Tt][Pp][Ss]?://[A-Za-z0-9.\-]+(:[0-9]{0,4})?([/?#].*)?$"
# normalise_alt on ASCII: controls that are not whitespace go, whitespace runs (str.split()'s
# ASCII set, \x1c-\x1f included) become one space, then the ends are trimmed.
_ASCII_CONTROLS = "[\\x00-\\x08\\x0e-\\x1b\\x7f]"
_ASCII_SPACES = "[\\t\\n\\x0b\\x0c\\r\\x1c-\\x1f ]+"


def _python_rows(values: pa.Array, mask: pa.Array, function) -> pa.Array:
    """``values`` with ``function`` applied in Python to the rows where ``mask`` is true."""
    if not pc.any(mask).as_py():
        return values
    results = [function(value) for value in pc.filter(values, mask).to_pylist()]
    return pc.replace_with_mask(values, mask, pa.array(results, values.type))


def _where(values: pa.Array, mask: pa.Array, function) -> pa.Array:
    """``values`` with the Arrow ``function`` applied to the rows where ``mask`` is true only
    (the regular expressions cost more than the checks that find the rows needing them)."""
    if not pc.any(mask).as_py():
        return values
    return pc.replace_with_mask(values, mask, function(pc.filter(values, mask)))


def clean_urls(urls: pa.Array) -> tuple[pa.Array, pa.Array]:
    """(URL as resolve_url gives it, or null; reason: null, ``no_url`` or ``bad_url``)."""
    noisy = pc.invert(pc.fill_null(pc.ascii_is_printable(urls), True))  # \t \n \r are not
    urls = _where(urls, noisy, lambda part: pc.replace_substring_regex(part, _URL_NOISE, ""))
    stripped = pc.utf8_trim(urls, _URL_ENDS)
    empty = pc.fill_null(pc.equal(pc.utf8_length(stripped), 0), True)
    plain = pc.fill_null(pc.match_substring_regex(stripped, _PLAIN_URL), False)
    checked = _python_rows(
        stripped,
        pc.and_(pc.invert(empty), pc.invert(plain)),
        lambda url: resolve_url("", url)[0],
    )
    bad = pc.and_(pc.invert(empty), pc.is_null(checked))
    reason = pc.if_else(empty, NO_URL, pc.if_else(bad, BAD_URL, pa.scalar(None, pa.string())))
    return checked, reason


def normalise_captions(captions: pa.Array) -> pa.Array:
    """normalise_alt of every caption (null stays null)."""
    ascii_only = pc.fill_null(pc.string_is_ascii(captions), True)
    # Printable ASCII without double or end spaces is normalised already (most captions).
    untidy = pc.or_(
        pc.invert(pc.fill_null(pc.ascii_is_printable(captions), True)),
        pc.or_(
            pc.fill_null(pc.match_substring(captions, "  "), False),
            pc.fill_null(pc.or_(pc.starts_with(captions, " "), pc.ends_with(captions, " ")), False),
        ),
    )
    text = _where(captions, pc.and_(ascii_only, untidy), _normalise_ascii)
    return _python_rows(text, pc.invert(ascii_only), normalise_alt)


def _normalise_ascii(text: pa.Array) -> pa.Array:
    text = pc.replace_substring_regex(text, _ASCII_CONTROLS, "")
    return pc.utf8_trim(pc.replace_substring_regex(text, _ASCII_SPACES, " "), " ")


def uids(urls: pa.Array, alts: pa.Array) -> pa.Array:
    """make_uid of every (url, alt), hashing bytes Arrow joined (no per-row str formatting)."""
    joined = pc.binary_join_element_wise(urls.cast(pa.binary()), alts.cast(pa.binary()), b"\x00")
    digests = [hashlib.sha1(value).hexdigest()[:16] for value in joined.to_pylist()]
    return pa.array(digests, pa.string())


def clean(raw: pa.Table, schema: pa.Schema) -> tuple[pa.Table, pa.Table, Counter]:
    """A batch of rows (``url``, ``caption``, ``source`` and the extras, text as strings) ->
    (pairs of ``schema``, rejects of REJECTS_SCHEMA, tally)."""
    raw_urls = _text(raw, "url")
    raw_captions = _text(raw, "caption")
    urls, url_reason = clean_urls(raw_urls)
    alts = normalise_captions(raw_captions)
    empty = pc.fill_null(pc.equal(pc.utf8_length(alts), 0), True)
    caption_reason = pc.if_else(empty, EMPTY_CAPTION, pa.scalar(None, pa.string()))
    bad = pc.or_(pc.is_valid(url_reason), empty)
    good = pc.invert(bad)
    kept_urls, kept_alts = pc.filter(urls, good), pc.filter(alts, good)
    columns = {
        "uid": uids(kept_urls, kept_alts),
        "url": kept_urls,
        "alt": kept_alts,
        "page_url": pa.nulls(len(kept_urls), pa.string()),
        "source": pc.filter(_text(raw, "source"), good),
    }
    for field in schema:
        if field.name not in columns:
            columns[field.name] = pc.filter(raw.column(field.name), good).cast(field.type)
    pairs = pa.table([columns[name] for name in schema.names], schema=schema)
    reasons = [
        [reason for reason in pair if reason is not None]
        for pair in zip(
            pc.filter(url_reason, bad).to_pylist(),
            pc.filter(caption_reason, bad).to_pylist(),
            strict=True,
        )
    ]
    rejects = reject_table(
        pc.filter(raw_urls, bad).to_pylist(),
        pc.filter(raw_captions, bad).to_pylist(),
        reasons,
        pc.filter(_text(raw, "source"), bad).to_pylist(),
    )
    tally = Counter({IN: raw.num_rows, VALID: pairs.num_rows})
    for found in reasons:
        tally[rejected(found[0])] += 1
    return pairs, rejects, tally


def reject_table(
    urls: list,
    captions: list,
    reasons: list[list[str]],
    sources: list,
    measured: list[list[str]] | None = None,
    uids: list[str] | None = None,
) -> pa.Table:
    """Rejects as stored: the row's own url and caption, its reasons, and where it was. Its
    uid (a stable key to shard and sort by) is by default that of the raw (url, caption)."""
    measured = measured if measured is not None else [[""] * len(found) for found in reasons]
    if uids is None:
        uids = [make_uid(u or "", c or "") for u, c in zip(urls, captions, strict=True)]
    return pa.table(
        {
            "uid": pa.array(uids, pa.string()),
            "url": pa.array(urls, pa.string()),
            "alt": pa.array(captions, pa.string()),
            "reasons": pa.array(reasons, pa.list_(pa.string())),
            "measured": pa.array(measured, pa.list_(pa.string())),
            "source": pa.array(sources, pa.string()),
        },
        schema=REJECTS_SCHEMA,
    )


def _text(table: pa.Table, name: str) -> pa.Array:
    column = table.column(name)
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    return column.cast(pa.string())


def pair_schema(extras: list[pa.Field]) -> pa.Schema:
    """The ingest's output: the pair contract, then the list's extras."""
    return pa.schema(list(PAIR_SCHEMA) + extras)
