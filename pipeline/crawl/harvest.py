"""What one WARC record, WAT record or fetched page yields: its pairs, or the reason it has none.

This is the crawl's accounting unit. Every record read (and every damaged part of a file) is
one ``Outcome``: kept when it yields at least one pair, else rejected under exactly one reason.
No Beam here, so each rule is tested directly.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from html import unescape
from urllib.parse import urljoin

from pipeline.crawl.extract import DEFAULT_MAX_PAGE_BYTES, ImageScan, links_to_pairs, page_pairs
from pipeline.crawl.payload import page_body
from pipeline.fetch.consent import page_reservation
from pipeline.fetch.fetcher import AGENT_TOKEN
from pipeline.optout import OptOutList, reason_of
from pipeline.records import make_uid
from pipeline.warc.capture import iso_date
from pipeline.warc.reader import Damage, WarcRecord, parse_http_response

WAT_IMAGE_PATHS = ("IMG@/src", "IMG@/data-src")  # CC's WAT lists <img src> links like this


@dataclass(frozen=True)
class HarvestOptions:
    """What every extractor needs to know; picklable, shipped to the workers."""

    max_page_bytes: int = DEFAULT_MAX_PAGE_BYTES
    include_empty_alt: bool = False
    agent_token: str = AGENT_TOKEN  # whose <meta name> and X-Robots-Tag lines apply
    opt_out: OptOutList | None = None  # --opt-out: pairs left out by the user's own list


@dataclass
class Outcome:
    """Pairs found in one record, or ``reason`` (a reject name) when none were."""

    source: str
    page_url: str = ""
    pairs: list[tuple[str, str]] = field(default_factory=list)
    reason: str | None = None
    counts: Counter = field(default_factory=Counter)
    page_date: str | None = None  # the page's capture time (ISO 8601 UTC), when archived


def rejected(source: str, reason: str, page_url: str = "", counts: Counter | None = None):
    return Outcome(source, page_url, reason=reason, counts=counts or Counter())


def from_scan(source: str, page_url: str, scan: ImageScan) -> Outcome:
    reason = None if scan.pairs else "no_image_pairs"
    return Outcome(source, page_url, scan.pairs, reason, scan.counts)


# Where withheld pairs are counted, by reason: pairs/withheld/meta_robots, ...
WITHHELD = "pairs/withheld/"
WITHHELD_IMAGES = "images/withheld/"  # every <img> of a reserved page, with an alt or not


def consented(
    source: str, page_url: str, scan: ImageScan, headers: Mapping[str, str], agent_token: str
) -> Outcome:
    """The page's pairs, or none when its headers or ``<meta>`` reserve it (consent.py): the
    page is rejected under the signal's name, its pairs counted under ``pairs/withheld/`` and
    its ``<img>`` tags under ``images/withheld/``; the pairs' ``img/pair`` becomes
    ``img/withheld``, so every ``<img>`` still ends in one ``img/`` key."""
    outcome = from_scan(source, page_url, scan)
    reservation = page_reservation(headers, scan.metas, agent_token)
    if reservation is None:
        return outcome
    withheld = outcome.counts.pop("img/pair", 0)
    outcome.counts["img/withheld"] += withheld
    outcome.counts[WITHHELD + reservation.reason] += len(outcome.pairs)
    outcome.counts[WITHHELD_IMAGES + reservation.reason] += outcome.counts["img/seen"]
    outcome.pairs, outcome.reason = [], reservation.reason
    return outcome


def screen(outcome: Outcome, opt_out: OptOutList | None) -> Outcome:
    """Leaves out the pairs the user's ``--opt-out`` list names (counted by kind under
    ``pairs/withheld/opt_out_<kind>``); a page whose every pair is listed is rejected under
    the first one's kind."""
    if not opt_out or not outcome.pairs:
        return outcome
    kept, first = [], None
    for url, alt in outcome.pairs:
        uid = make_uid(url, alt) if opt_out.uids else None
        kind = opt_out.pair_kind(url, outcome.page_url, uid)
        if kind is None:
            kept.append((url, alt))
            continue
        first = first or kind
        outcome.counts[WITHHELD + reason_of(kind)] += 1
        outcome.counts["img/pair"] -= 1
        outcome.counts["img/withheld"] += 1
    if first is not None and not kept:
        outcome.reason = reason_of(first)
    outcome.pairs = kept
    return outcome


def from_damage(damage: Damage, path: str, extract, options: HarvestOptions) -> Outcome:
    """A damaged part of a file: rejected under its damage, unless what could be read of its
    last record (a page clipped after its images) still gives pairs. Then it is kept, and
    ``warc/salvaged`` says so; one unit either way, so the accounting stays exact."""
    if damage.record is not None:
        outcome = extract(damage.record, path, options)
        if outcome.reason is None:
            outcome.counts["warc/salvaged"] += 1
            return outcome
        return rejected(outcome.source, damage.reason, outcome.page_url, outcome.counts)
    return rejected(f"{path}@{damage.offset}", damage.reason)


def from_response(
    source: str, page_url: str, headers: dict[str, str], payload: bytes, options: HarvestOptions
) -> Outcome:
    """A 2xx HTTP response's pairs, however it came (a WARC/ARC record or a fetched page): one
    content decision for both (pipeline.crawl.payload), then the HTML extractor."""
    body = page_body(headers, payload, options.max_page_bytes)
    if body.reason is not None:
        return rejected(source, body.reason, page_url, body.counts)
    try:
        scan = page_pairs(
            body.data,
            headers.get("content-type"),
            page_url,
            options.max_page_bytes,
            options.include_empty_alt,
        )
    except Exception:  # noqa: BLE001 - a parser crash on hostile markup is that page's reject
        return rejected(source, "parse_error", page_url, body.counts)
    outcome = consented(source, page_url, scan, headers, options.agent_token)
    outcome.counts.update(body.counts)
    return outcome


def from_warc_record(record: WarcRecord, path: str, options: HarvestOptions) -> Outcome:
    """A WARC (or ARC) ``response`` record's pairs; every other record is skipped by name."""
    source, page_url = record.source(path), record.target_uri
    if record.type != "response":
        return rejected(source, "not_response_record", page_url)
    response = parse_http_response(record.block)
    if response is None:
        return rejected(source, "not_http_response", page_url)
    if not 200 <= response.status < 300:
        return rejected(source, f"http_status_{response.status // 100}xx", page_url)
    outcome = from_response(source, page_url, response.headers, response.payload, options)
    if record.clipped:
        outcome.counts["pages/clipped_by_reader"] += 1
    if record.truncated:
        outcome.counts["pages/cut_by_damage"] += 1
    outcome.page_date = iso_date(record.headers.get("warc-date", "")) or None
    return outcome


def from_wat_record(record: WarcRecord, path: str, options: HarvestOptions) -> Outcome:
    """A WAT ``metadata`` record's image links, read from Common Crawl's JSON envelope."""
    source = record.source(path)
    if record.type != "metadata":
        return rejected(source, "not_metadata_record", record.target_uri)
    try:
        envelope = json.loads(record.block)["Envelope"]
        warc_headers = envelope["WARC-Header-Metadata"]
    except (ValueError, KeyError, TypeError):
        return rejected(source, "bad_wat_json", record.target_uri)
    page_url = str(warc_headers.get("WARC-Target-URI", record.target_uri)).strip("<>")
    if str(warc_headers.get("WARC-Type", "")).lower() != "response":
        return rejected(source, "not_response_metadata", page_url)
    response = envelope.get("Payload-Metadata", {}).get("HTTP-Response-Metadata")
    if not isinstance(response, dict):
        return rejected(source, "not_http_response", page_url)
    status = str(response.get("Response-Message", {}).get("Status", "200"))
    if not status.startswith("2"):
        return rejected(source, f"http_status_{status[:1]}xx", page_url)
    html = response.get("HTML-Metadata")
    if not isinstance(html, dict):
        return rejected(source, "not_html", page_url)
    scan = wat_scan(html, page_url, options)
    scan.metas = wat_metas(html)
    outcome = consented(source, page_url, scan, wat_headers(response), options.agent_token)
    outcome.page_date = iso_date(str(warc_headers.get("WARC-Date", ""))) or None
    return outcome


def wat_headers(response: dict) -> dict[str, str]:
    """The stored response's headers (``HTTP-Response-Metadata.Headers``), lower-case names;
    a header given several values (a list) keeps them all, one a line."""
    headers = response.get("Headers")
    if not isinstance(headers, dict):
        return {}
    out = {}
    for name, value in headers.items():
        values = value if isinstance(value, list) else [value]
        out[str(name).strip().lower()] = "\n".join(str(item) for item in values)
    return out


def wat_metas(html: dict) -> list[tuple[str, str]]:
    """The page's ``<meta name content>`` as the WAT lists them (``Head.Metas``)."""
    metas = (html.get("Head") or {}).get("Metas") or []
    return [
        (str(meta["name"]).strip().lower(), str(meta.get("content") or ""))
        for meta in metas
        if isinstance(meta, dict) and meta.get("name")
    ]


def wat_scan(html: dict, page_url: str, options: HarvestOptions) -> ImageScan:
    """The WAT's ``IMG@/src`` links, resolved against ``Head.Base`` and the page URL.

    Common Crawl's WAT keeps attribute values as written in the HTML, so entities are decoded
    here (a value already decoded is unchanged unless it spells an entity itself).
    """
    links = [
        (unescape(link.get("url") or ""), unescape(link.get("alt") or ""))
        for link in html.get("Links") or []
        if isinstance(link, dict) and link.get("path") in WAT_IMAGE_PATHS
    ]
    base = page_url
    head_base = (html.get("Head") or {}).get("Base")
    if isinstance(head_base, str) and head_base.strip():
        try:
            base = urljoin(page_url, head_base.strip())
        except ValueError:
            base = page_url
    return links_to_pairs(links, base, options.include_empty_alt)
