"""Machine-readable reservations ("not for AI training") as pure decisions, for every job
that fetches or reads pages (align-crawl, align-download; here, beside robots.txt, because the
jobs share the fetcher room and not each other).

A site owner can say no in many places; each is parsed here, with no I/O and no Beam, so the
crawl (a page's headers and ``<meta>``) and the download (an image's headers, a host's
``/.well-known/tdmrep.json`` and ``/ai.txt``) make the same decision from the same words:

- ``X-Robots-Tag`` (header) and ``<meta name="robots">`` / ``<meta name="{agent token}">``:
  ``noai``, ``noimageai``, ``noindex``, ``noimageindex`` or ``none`` reserves;
- TDMRep (W3C community group final report): the ``tdm-reservation: 1`` header,
  ``<meta name="tdm-reservation" content="1">``, and the rules of ``tdmrep.json``;
- Spawning's ``ai.txt``: robots.txt's syntax, read for our agent token.

Where the texts leave room, these are the project's decisions (docs/stages.md, "Consent"):
only the value ``1`` reserves (``0``, an empty or an unknown value reserves nothing, like a
file that does not parse); ``tdm-policy`` does not change that (with ``tdm-reservation: 1``
it offers a licence we do not negotiate, so the reservation stands; without it, it reserves
nothing); signals are cumulative (any one that reserves wins, whatever another says);
in ``tdmrep.json`` the first rule whose ``location`` matches applies.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from pipeline.fetch.robots import OPT_OUT_DIRECTIVES, RobotsRules, opts_out, parse_robots

# Reject reasons, one per signal: the same names in stats.json whichever job saw them.
X_ROBOTS_TAG = "x_robots_tag"
META_ROBOTS = "meta_robots"
TDM_RESERVATION = "tdm_reservation"  # the HTTP header
TDM_RESERVATION_META = "tdm_reservation_meta"
TDMREP_JSON = "tdmrep_json"
AI_TXT = "ai_txt"
PAGE_SIGNALS = (X_ROBOTS_TAG, META_ROBOTS, TDM_RESERVATION, TDM_RESERVATION_META)
HOST_SIGNALS = (TDMREP_JSON, AI_TXT)

TDMREP_PATH = "/.well-known/tdmrep.json"
AI_TXT_PATH = "/ai.txt"
TDMREP_MAX_BYTES = 500 * 1024
_SPLIT = re.compile(r"[,\s]+")


@dataclass(frozen=True)
class Reservation:
    """Why a resource is reserved: the signal's reason name and what it said."""

    reason: str
    detail: str


def header_values(headers: Mapping[str, str], name: str) -> list[str]:
    """Every value of a header (lower-case name); repeated lines may be joined by newlines."""
    value = headers.get(name)
    if value is None:
        return []
    values = value if isinstance(value, list | tuple) else [value]
    return [line for item in values for line in str(item).split("\n")]


def robots_meta_directives(content: str) -> set[str]:
    """The directives of a robots ``<meta content>``: commas (or spaces) between them, a
    ``name:value`` directive (``max-image-preview:none``) known by its name only."""
    items = (item.split(":", 1)[0].strip().lower() for item in _SPLIT.split(content or ""))
    return {item for item in items if item}


def meta_robots_opt_out(metas: Iterable[tuple[str, str]], agent_token: str) -> str | None:
    """The first opt-out directive of ``<meta name="robots">`` or ``<meta name="{agent
    token}">`` among a page's (name, content) metas, or None."""
    names = {"robots", agent_token.lower()}
    found: set[str] = set()
    for name, content in metas:
        if (name or "").strip().lower() in names:
            found |= robots_meta_directives(content) & OPT_OUT_DIRECTIVES
    return min(found) if found else None


def tdm_reserves(values: Iterable[str]) -> bool:
    """Whether any ``tdm-reservation`` value reserves: exactly ``1`` (spaces aside)."""
    return any(str(value).strip() == "1" for value in values)


def meta_values(metas: Iterable[tuple[str, str]], name: str) -> list[str]:
    return [content or "" for meta, content in metas if (meta or "").strip().lower() == name]


def page_reservation(
    headers: Mapping[str, str], metas: Iterable[tuple[str, str]], agent_token: str
) -> Reservation | None:
    """What reserves a page (or None): its headers (lower-case names) first, then its
    ``<meta>`` tags, in the order of PAGE_SIGNALS."""
    metas = list(metas)
    directive = opts_out(header_values(headers, "x-robots-tag"), agent_token)
    if directive:
        return Reservation(X_ROBOTS_TAG, f"X-Robots-Tag: {directive}")
    directive = meta_robots_opt_out(metas, agent_token)
    if directive:
        return Reservation(META_ROBOTS, f'<meta name="robots"> {directive}')
    if tdm_reserves(header_values(headers, "tdm-reservation")):
        return Reservation(TDM_RESERVATION, "tdm-reservation: 1")
    if tdm_reserves(meta_values(metas, "tdm-reservation")):
        return Reservation(TDM_RESERVATION_META, '<meta name="tdm-reservation" content="1">')
    return None


# --- /.well-known/tdmrep.json -----------------------------------------------------------------


@dataclass(frozen=True)
class TdmRule:
    """One rule of a tdmrep.json: a location pattern and whether it reserves."""

    location: str
    reserved: bool
    pattern: re.Pattern


def location_pattern(location: str) -> re.Pattern:
    """A TDMRep ``location`` as a regex over the URL's path (and query): ``*`` any run of
    characters, a final ``$`` the end, otherwise a prefix; a location without a leading
    ``/`` is read from the root, as robots.txt paths are."""
    anchored = location.endswith("$")
    body = location[:-1] if anchored else location
    if not body.startswith(("/", "*")):
        body = "/" + body
    regex = ".*".join(re.escape(piece) for piece in body.split("*"))
    return re.compile(regex + ("$" if anchored else ""))


def parse_tdmrep(data: bytes | str) -> list[TdmRule]:
    """The rules of a tdmrep.json, in order; one that does not parse (or is no JSON array
    of objects with a ``location``) gives none, so it reserves nothing."""
    if isinstance(data, bytes):
        data = data[:TDMREP_MAX_BYTES].decode("utf-8", "replace")
    try:
        document = json.loads(data)
    except ValueError:
        return []
    if not isinstance(document, list):
        return []
    rules = []
    for entry in document:
        if not isinstance(entry, dict) or not isinstance(entry.get("location"), str):
            continue
        location = entry["location"].strip()
        reserved = tdm_reserves([entry.get("tdm-reservation", "")])
        rules.append(TdmRule(location, reserved, location_pattern(location)))
    return rules


def _path_of(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return (parts.path or "/") + (f"?{parts.query}" if parts.query else "")


def tdmrep_reservation(rules: Iterable[TdmRule], url: str) -> Reservation | None:
    """The first rule whose location matches the URL's path decides (None: not reserved)."""
    path = _path_of(url)
    for rule in rules:
        if rule.pattern.match(path):
            if rule.reserved:
                return Reservation(TDMREP_JSON, f"tdmrep.json location {rule.location}")
            return None
    return None


# --- /ai.txt -----------------------------------------------------------------------------------


def parse_ai_txt(data: bytes | str, agent_token: str) -> RobotsRules:
    """Spawning's ai.txt, read as robots.txt for ``agent_token`` (else ``*``). Its usual
    patterns name file types (``Disallow: *.jpg``); a pattern without a leading ``/`` or
    ``*`` is read from the root, as robots.txt paths are."""
    if isinstance(data, bytes):
        data = data[:TDMREP_MAX_BYTES].decode("utf-8", "replace")
    lines = []
    for raw in data.splitlines():
        key, colon, value = raw.split("#", 1)[0].partition(":")
        value = value.strip()
        if colon and key.strip().lower() in ("allow", "disallow"):
            if value and not value.startswith(("/", "*")):
                value = "/" + value
            lines.append(f"{key.strip()}: {value}")
        else:
            lines.append(raw)
    return parse_robots("\n".join(lines), agent_token)


def ai_txt_reservation(rules: RobotsRules, url: str) -> Reservation | None:
    path = _path_of(url)
    if rules.allowed(path):
        return None
    return Reservation(AI_TXT, f"ai.txt disallows {path}")
