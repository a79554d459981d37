"""HTML page -> (image URL, alt-text) pairs: charset, parsing, URL resolution. No Beam.

The rules follow what a browser does with the same bytes, so a crawl sees the images a reader
saw: the byte-order mark, then the HTTP ``Content-Type`` charset, then ``<meta charset>``, then
detection pick the encoding (WHATWG label mapping, e.g. ``iso-8859-1`` means windows-1252);
the HTML5 parser (lexbor, via selectolax) decodes entities and tolerates broken markup; image
URLs resolve against ``<base href>`` and the page URL like ``img.src`` would.
"""

from __future__ import annotations

import codecs
import re
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urljoin

from resiliparse.parse.encoding import detect_encoding, map_encoding_to_html5
from selectolax.lexbor import LexborHTMLParser

from pipeline.pairs import URL_NOISE, normalise_alt, resolve_url

DEFAULT_MAX_PAGE_BYTES = 2 << 20  # larger pages are cut here and still parsed
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
SNIFF_TYPES = frozenset({"", "text/plain", "application/octet-stream", "unknown/unknown"})
URL_ATTRIBUTES = ("src", "data-src", "srcset", "data-srcset")  # first usable one wins

_CHARSET_PARAM = re.compile(rb"charset\s*=\s*[\"']?\s*([A-Za-z0-9_.:\-]+)", re.IGNORECASE)
_META_CHARSET = re.compile(rb"<meta[^>]*?charset\s*=\s*[\"']?\s*([A-Za-z0-9_.:\-]+)", re.IGNORECASE)
_BOMS = ((codecs.BOM_UTF8, "utf-8"), (codecs.BOM_UTF16_LE, "utf-16-le"),
         (codecs.BOM_UTF16_BE, "utf-16-be"))  # fmt: skip
# WHATWG "rules for identifying an unknown MIME type": HTML patterns after leading whitespace,
# each followed by a space or ">" (or "/"); ``<img`` too, which the project sniffed before.
_SNIFF_HTML = re.compile(
    rb"[\t\n\f\r ]*<(?:!doctype html|html|head|script|iframe|h1|div|font|table|a|style|title|b|"
    rb"body|br|p|img|!--)[\t\n\f\r />]",
    re.IGNORECASE,
)


@dataclass
class Decoded:
    """A page's text and how its encoding was chosen (``bom``, ``http``, ``meta``, ``detected``)."""

    text: str
    encoding: str
    source: str
    had_errors: bool = False  # bytes invalid in the chosen encoding became U+FFFD


@dataclass
class ImageScan:
    """The pairs of one page and what happened to each ``<img>`` (keys ``img/<outcome>``)."""

    pairs: list[tuple[str, str]] = field(default_factory=list)
    counts: Counter = field(default_factory=Counter)
    metas: list[tuple[str, str]] = field(default_factory=list)  # (name, content) of <meta name>


def mime_type(content_type: str | None) -> str:
    """``'Text/HTML; charset=x'`` -> ``'text/html'``."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def may_be_html(content_type: str | None) -> bool:
    """Whether a response of this type can be a page: declared HTML, or a type worth sniffing."""
    mime = mime_type(content_type)
    return mime in HTML_TYPES or mime in SNIFF_TYPES


def is_html(content_type: str | None, body: bytes) -> bool:
    """HTML by its declared type, or by its first bytes when the type says nothing useful."""
    mime = mime_type(content_type)
    if mime in HTML_TYPES:
        return True
    return mime in SNIFF_TYPES and sniffs_as_html(body)


def sniffs_as_html(body: bytes) -> bool:
    """Whether a body starts like an HTML document (WHATWG MIME sniffing's HTML patterns)."""
    return (
        _SNIFF_HTML.match(body, len(codecs.BOM_UTF8) if body.startswith(codecs.BOM_UTF8) else 0)
        is not None
    )


def python_codec(label: str | bytes | None) -> str | None:
    """A charset label as a Python codec name, per the WHATWG label table; None if unknown."""
    if not label:
        return None
    if isinstance(label, bytes):
        label = label.decode("ascii", "ignore")
    name = map_encoding_to_html5(label.strip().strip("\"'"), fallback_utf8=False)
    if name is None:
        return None
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def choose_encoding(body: bytes, content_type: str | None) -> tuple[str, str]:
    """(codec, why): BOM, then the HTTP header, then ``<meta>``, then detection."""
    for bom, name in _BOMS:
        if body.startswith(bom):
            return name, "bom"
    declared = _CHARSET_PARAM.search((content_type or "").encode("latin-1", "ignore"))
    codec = python_codec(declared.group(1)) if declared else None
    if codec:
        return codec, "http"
    meta = _META_CHARSET.search(body, 0, 4096)
    codec = python_codec(meta.group(1)) if meta else None
    if codec:
        # A <meta> naming UTF-16 in a byte-oriented document means UTF-8 (HTML standard).
        return ("utf-8" if codec.startswith("utf-16") else codec), "meta"
    if _is_utf8(body):  # valid multi-byte UTF-8 is almost never an accident of another charset
        return "utf-8", "detected"
    detected = python_codec(detect_encoding(body))
    # Not UTF-8, so a detector saying so is guessing: use the web's legacy default instead.
    return (detected if detected not in (None, "utf-8") else "cp1252"), "detected"


def _is_utf8(body: bytes) -> bool:
    try:
        body.decode("utf-8")
    except UnicodeDecodeError as error:
        return error.start >= len(body) - 3  # only a character cut off at the end (a capped page)
    return True


def decode_html(body: bytes, content_type: str | None = None) -> Decoded:
    """Decodes a page as a browser would; undecodable bytes become U+FFFD, never an error."""
    encoding, source = choose_encoding(body, content_type)
    try:
        text, had_errors = body.decode(encoding), False
    except UnicodeDecodeError:
        text, had_errors = body.decode(encoding, "replace"), True
    return Decoded(text.removeprefix("\ufeff"), encoding, source, had_errors)


def best_srcset_candidate(srcset: str | None) -> str | None:
    """The widest (or densest) candidate of a ``srcset``; the first one when none says."""
    best, best_size = None, -1.0
    for candidate in (srcset or "").split(","):
        words = candidate.split()
        if not words:
            continue
        size = 0.0
        if len(words) > 1 and words[1][-1:] in ("w", "x"):
            try:
                size = float(words[1][:-1])
            except ValueError:
                size = 0.0
        if size > best_size:
            best, best_size = words[0], size
    return best


def image_url(attributes: dict, base: str) -> tuple[str | None, str]:
    """The URL an ``<img>`` shows: ``src``, else the lazy-loading ``data-src``/``srcset``."""
    outcome = "no_src"
    for name in URL_ATTRIBUTES:
        value = attributes.get(name)
        if name.endswith("srcset"):
            value = best_srcset_candidate(value)
        url, why = resolve_url(base, value)
        if url:
            return url, "ok"
        if why != "no_src" and outcome == "no_src":
            outcome = why  # report the first real problem, not a missing fallback
    return None, outcome


def page_base(tree: LexborHTMLParser, page_url: str) -> str:
    """The document base URL: the first ``<base href>``, resolved against the page URL."""
    for node in tree.tags("base"):
        href = node.attributes.get("href")
        if href is not None:
            try:
                return urljoin(page_url, URL_NOISE.sub("", href.strip()))
            except ValueError:
                return page_url
    return page_url


def extract_pairs(html: str, page_url: str, include_empty_alt: bool = False) -> ImageScan:
    """Every ``<img>`` with an http(s) URL and (unless asked) a non-empty alt-text."""
    tree = LexborHTMLParser(html)
    base = page_base(tree, page_url)
    images = ((node.attributes.get("alt"), node.attributes) for node in tree.tags("img"))
    scan = scan_images(images, lambda attributes: image_url(attributes, base), include_empty_alt)
    scan.metas = page_metas(tree)
    return scan


def page_metas(tree: LexborHTMLParser) -> list[tuple[str, str]]:
    """Every ``<meta name content>`` of a page, names lower-cased: where robots and TDMRep
    reservations are written (pipeline/fetch/consent.py reads them)."""
    metas = []
    for node in tree.tags("meta"):
        name = node.attributes.get("name")
        if name:
            metas.append((name.strip().lower(), node.attributes.get("content") or ""))
    return metas


def links_to_pairs(
    links: list[tuple[str | None, str | None]], base: str, include_empty_alt: bool = False
) -> ImageScan:
    """The same rules over (src, alt) pairs already extracted (e.g. a WAT file's links)."""
    images = ((raw_alt, src) for src, raw_alt in links)
    return scan_images(images, lambda src: resolve_url(base, src), include_empty_alt)


def scan_images(images, locate, include_empty_alt: bool) -> ImageScan:
    """One set of rules for every source of images: ``images`` yields (raw alt, where) and
    ``locate(where)`` gives (absolute URL, None) or (None, why it has none)."""
    scan = ImageScan()
    for raw_alt, where in images:
        scan.counts["img/seen"] += 1
        alt = normalise_alt(raw_alt or "")
        if not alt and not include_empty_alt:
            scan.counts["img/empty_alt"] += 1
            continue
        url, why = locate(where)
        if url is None:
            scan.counts[f"img/{why}"] += 1
            continue
        scan.counts["img/pair"] += 1
        scan.pairs.append((url, alt))
    return scan


def page_pairs(
    body: bytes,
    content_type: str | None,
    page_url: str,
    max_page_bytes: int = DEFAULT_MAX_PAGE_BYTES,
    include_empty_alt: bool = False,
) -> ImageScan:
    """An HTML payload's pairs: cut at the size cap, decoded, parsed; counts say how it went."""
    counts = Counter({"pages/parsed": 1})
    if len(body) > max_page_bytes:
        body = body[:max_page_bytes]
        counts["pages/truncated"] += 1
    decoded = decode_html(body, content_type)
    counts[f"charset/{decoded.source}"] += 1
    if decoded.had_errors:
        counts["charset/decode_errors"] += 1
    scan = extract_pairs(decoded.text, page_url, include_empty_alt)
    scan.counts.update(counts)
    return scan
