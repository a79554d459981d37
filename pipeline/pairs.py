"""The canonical pair every job that makes pairs agrees on (crawl from pages, ingest from
URL lists): the image URL resolved, the alt-text normalised, one row per uid. The same pair
gets the same uid (pipeline/records.py ``make_uid``) whichever job found it.
"""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

import pyarrow as pa
import pyarrow.compute as pc

HTTP_SCHEMES = frozenset({"http", "https"})
URL_NOISE = re.compile(r"[\t\n\r]")  # the URL parser drops these anywhere in a URL
_BAD_HOST = re.compile(r"[\s<>\"{}|\\^`%]")  # forbidden in a host name (WHATWG URL)
# C0/C1 control characters that are not whitespace: invisible, they only break tokenizers.
# (Unicode category Cc minus str.isspace(); whitespace controls become spaces instead.)
_CONTROLS = re.compile("[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f]")


def normalise_alt(alt: str) -> str:
    """Drops control characters and collapses whitespace runs to one space, stripped."""
    return " ".join(_CONTROLS.sub("", alt).split())


def resolve_url(base: str, reference: str | None) -> tuple[str | None, str]:
    """(absolute http(s) URL, "ok"), or (None, why: ``no_src``, ``not_http``, ``invalid_url``)."""
    reference = URL_NOISE.sub("", (reference or "").strip(" \t\n\r\f"))
    if not reference:
        return None, "no_src"
    try:
        # Absolute URLs (most of them) need no joining: urljoin would only re-assemble them.
        absolute = reference[:8].lower().startswith(("http://", "https://"))
        url = reference if absolute else urljoin(base, reference)
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return None, "invalid_url"
    if parts.scheme not in HTTP_SCHEMES:
        return None, "not_http"
    if not parts.hostname or _BAD_HOST.search(parts.hostname):
        return None, "invalid_url"
    return url, "ok"


def keep_first_per_uid(table: pa.Table) -> pa.Table:
    """One row per uid: the one with the smallest (page_url, source)."""
    order = pc.sort_indices(
        table, sort_keys=[("uid", "ascending"), ("page_url", "ascending"), ("source", "ascending")]
    )
    table = table.take(order)
    uids = table.column("uid").combine_chunks()
    if len(uids) < 2:
        return table
    changed = pc.not_equal(uids.slice(1), uids.slice(0, len(uids) - 1))
    first = pa.concat_arrays([pa.array([True]), changed])
    return table.filter(first)
