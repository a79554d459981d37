"""align-download --archive: images read from WARC/ARC captures instead of the live web.

Located without holding the archive in memory, as a join (the CDX idea, built in the job):

1. ``IndexArchive`` reads each archive file once and emits one small ``Capture`` per
   response, resource or revisit record (pages left out), keyed by its canonical URL, and
   originals also by payload digest (for revisits that name only a digest).
2. ``ResolveInArchive`` joins the pairs with those keys, ``LOOKUPS`` rounds: a round picks a
   pair's capture (the one in the page's file, else the nearest in time to the page's capture,
   ``page_date``, else the latest); a revisit sends the pair on to its original (by
   WARC-Refers-To-Target-URI and -Date, else by digest), a 3xx with Location to its target.
   A last join finds each captured image's host's robots.txt, when the archive holds one.
3. A resolved pair carries its record's place (``_archive``, a scratch key) into the plan: it
   is planned under an ``archive <host>`` unit (no politeness: no request is made) and its
   fetch list reads the record by seeking to its offset (``ArchiveReader``), then builds the
   row with the same ``image_record`` as a live fetch: decode, orientation, resize, rules.

Pairs not in the archive keep their host and are fetched live, unless ``--archive-only``:
then they are rejected as ``not_in_archive`` and the job makes no network request.
"""

from __future__ import annotations

import argparse
import io
import json
import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace

import apache_beam as beam
import pyarrow as pa

from commandline.flags import UsageError
from pipeline.download.plan import Part, split_host
from pipeline.fetch.fetcher import FetchConfig, FetchResult, http_failure_name
from pipeline.fetch.robots import RobotsCache, opts_out, origin_of
from pipeline.shards import match_files, open_raw
from pipeline.warc.capture import (
    PAGE_TYPES,
    Capture,
    canonical_url,
    capture_of,
    decoded_payload,
    header_values,
    iso_date,
    record_at,
    same_file,
    seconds_of,
)
from pipeline.warc.reader import Damage, iter_records, parse_http_response

ARCHIVE = "_archive"  # a resolved pair's scratch key: where its bytes are, or why not
ARCHIVE_SOURCE = "_archive_source"  # what the plan's fingerprint adds for such a pair
ARCHIVE_UNIT = "archive "  # the unit prefix of pairs answered by the archive
IMAGE_SOURCE = pa.field("image_source", pa.string())  # file@offset of the record, or the URL
NOT_IN_ARCHIVE = "not_in_archive"
LOOKUPS = 4  # joins per pair: its URL, then up to 3 redirects or revisits
URL, DIGEST = "u ", "d "
NEXT = "next"
JOB = "align-download"


@dataclass(frozen=True)
class ArchiveSettings:
    """What the archive path needs on the workers; picklable."""

    files: tuple[str, ...]
    indexes: tuple[str, ...]  # CDXJ files that index them (empty: an index pass is made)
    only: bool
    robots: bool
    x_robots: bool
    agent_token: str
    max_bytes: int


def archive_settings(args: argparse.Namespace, config: FetchConfig) -> ArchiveSettings | None:
    """The archive settings the flags give (None without --archive); fails if nothing matches."""
    pattern = getattr(args, "archive", None)
    if not pattern:
        return None
    files = match_files(pattern)
    if not files:
        raise UsageError(f"--archive {pattern} matches no file")
    indexes = match_files(args.archive_index) if getattr(args, "archive_index", None) else []
    if getattr(args, "archive_index", None) and not indexes:
        raise UsageError(f"--archive-index {args.archive_index} matches no file")
    return ArchiveSettings(
        tuple(files),
        tuple(indexes),
        args.archive_only,
        config.respect_robots,
        config.respect_x_robots_tag,
        config.agent_token,
        config.max_bytes,
    )


def with_image_source(schema: pa.Schema) -> pa.Schema:
    """The download's schema plus ``image_source`` (kept where an input already has it)."""
    return schema if IMAGE_SOURCE.name in schema.names else schema.append(IMAGE_SOURCE)


def is_archive_unit(unit: str) -> bool:
    return unit.startswith(ARCHIVE_UNIT)


# --- the index ------------------------------------------------------------------------------


class IndexArchive(beam.DoFn):
    """One archive file in, ``(key, Capture)`` out per capture record: one pass, no payloads
    kept (a record's block is dropped once its headers are read)."""

    def process(self, path: str) -> Iterator[tuple[str, Capture]]:
        indexed = beam.metrics.Metrics.counter(JOB, "archive/captures_indexed")
        with open_raw(path) as handle:
            for item in iter_records(handle):
                record = item.record if isinstance(item, Damage) else item
                if record is None:
                    continue
                capture = capture_of(record, path)
                if capture is None:
                    continue
                indexed.inc()
                yield URL + capture.url, capture
                if capture.digest and capture.kind != "revisit":
                    yield DIGEST + capture.digest, capture


class ReadCdxj(beam.DoFn):
    """One CDXJ index file in (``surt timestamp {json}`` lines, pywb's format), ``(key,
    Capture)`` out per line: the same captures as IndexArchive, without reading the archive.
    Its ``filename`` names an --archive file (by name); lines of other files are skipped."""

    def __init__(self, files: tuple[str, ...]):
        self.by_name = {os.path.basename(path): path for path in files}

    def process(self, path: str) -> Iterator[tuple[str, Capture]]:
        with open_raw(path) as handle:
            for line in io.TextIOWrapper(handle, encoding="utf-8", errors="replace"):
                capture = capture_of_cdxj(line, self.by_name)
                if capture is None:
                    continue
                yield URL + capture.url, capture
                if capture.digest and capture.kind != "revisit":
                    yield DIGEST + capture.digest, capture


def capture_of_cdxj(line: str, by_name: dict[str, str]) -> Capture | None:
    """A CDXJ line's capture, or None (a page, another file's record, a malformed line).
    CDXJ holds no Location and no revisit reference: redirects are read from their record
    when followed (``Choose``), revisits resolved by digest."""
    parts = line.strip().split(" ", 2)
    try:
        fields = json.loads(parts[2])
        file = by_name[os.path.basename(fields["filename"])]
        offset = int(fields["offset"])
    except (IndexError, ValueError, KeyError, TypeError):
        return None
    url = canonical_url(str(fields.get("url", "")))
    mime = str(fields.get("mime", ""))
    status = str(fields.get("status", ""))
    http_status = int(status) if status.isdigit() else None
    kind = "revisit" if mime == "warc/revisit" else "response"
    answered = http_status is None or 200 <= http_status < 300
    if url is None or (kind != "revisit" and answered and mime.lower().startswith(PAGE_TYPES)):
        return None
    return Capture(
        url, file, offset, 0, iso_date(parts[1]), kind, http_status, mime,
        str(fields.get("digest", "")), "", "", "",
    )  # fmt: skip


# --- resolving ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Want:
    """A pair looking for its record: the key it looks under, what it prefers, how far it went."""

    unit: str
    row: dict
    page_file: str
    date: str  # the capture time it prefers: the page's, or a revisit's original's
    hops: int = 0
    originals_only: bool = False  # following a revisit: another revisit is no answer
    came_by: str = ""  # how it got here (for the reject's detail)


def first_want(element: tuple[str, dict]) -> tuple[str, Want]:
    unit, row = element
    source = row.get("source") or ""
    page_file = source.rpartition("@")[0] if "@" in source else ""
    want = Want(unit, row, page_file, row.get("page_date") or "")
    return URL + (canonical_url(row["url"] or "") or ""), want


def choose(captures: list[Capture], page_file: str, date: str) -> Capture:
    """The capture in the page's file, else the nearest in time to ``date``, else the latest;
    ties go to the earlier file and offset, so every run chooses alike."""
    pool = [c for c in captures if same_file(page_file, c.file)] or captures
    wanted = seconds_of(date)
    pool = sorted(pool, key=lambda c: (c.file, c.offset, c.inner))
    if wanted is not None:
        dated = [c for c in pool if c.date]
        if dated:
            return min(dated, key=lambda c: (abs(seconds_of(c.date) - wanted), c.date))
    return max(pool, key=lambda c: c.date)  # the first of the latest: the earliest place


class Choose(beam.DoFn):
    """One join round: each pair's capture under its key; done, or on to the next key."""

    def __init__(self, last: bool):
        self.last = last

    def process(self, element):
        key, groups = element
        captures = sorted(groups["have"], key=lambda c: (c.date, c.file, c.offset, c.inner))
        for want in groups["want"]:
            pool = [c for c in captures if c.kind != "revisit"] if want.originals_only else captures
            yield from self.step(key, want, pool)

    def step(self, key: str, want: Want, captures: list[Capture]):
        if not captures:
            what = want.came_by or f"{want.row['url']} was not captured"
            return [_done(want, {"status": NOT_IN_ARCHIVE, "error": what})]
        chosen = choose(captures, want.page_file, want.date)
        if chosen.kind == "revisit":
            target = (URL + chosen.refers_to) if chosen.refers_to else None
            target = target or ((DIGEST + chosen.digest) if chosen.digest else None)
            if target is None:
                why = f"revisit {chosen.source} names no original"
                return [_done(want, {"status": NOT_IN_ARCHIVE, "error": why})]
            date = chosen.refers_date or chosen.date
            why = f"the original of revisit {chosen.source} was not captured"
            return self._next(target, replace(want, date=date, originals_only=True, came_by=why))
        if chosen.location or _unknown_location(chosen):
            chosen = replace(chosen, location=_location_of(chosen))
        if chosen.location:
            why = f"{chosen.source} redirects to {chosen.location}, which was not captured"
            onward = replace(want, originals_only=False, came_by=why)
            return self._next(URL + chosen.location, onward)
        status = chosen.http_status
        if status is not None and not 200 <= status < 300:
            name = "bad_redirect" if 300 <= status < 400 else http_failure_name(status)
            why = f"archived HTTP {status} at {chosen.source}"
            return [_done(want, {"status": name, "error": why})]
        return [_done(want, _located(chosen))]

    def _next(self, key: str, want: Want):
        if self.last:
            why = f"more than {LOOKUPS - 1} redirects or revisits in the archive"
            return [_done(want, {"status": "too_many_redirects", "error": why})]
        return [beam.pvalue.TaggedOutput(NEXT, (key, replace(want, hops=want.hops + 1)))]


def _unknown_location(capture: Capture) -> bool:
    """A redirect from a CDXJ index: its Location is only in its record."""
    status = capture.http_status
    return status is not None and 300 <= status < 400 and not capture.location


def _location_of(capture: Capture) -> str:
    if capture.location:
        return capture.location
    with open_raw(capture.file) as handle:
        record = record_at(handle, capture.offset, capture.inner)
    read = None if isinstance(record, Damage) else capture_of(record, capture.file)
    return read.location if read is not None else ""


def _located(capture: Capture) -> dict:
    return {
        "status": "ok",
        "source": capture.source,
        "file": capture.file,
        "offset": capture.offset,
        "inner": capture.inner,
        "date": capture.date,
        "url": capture.url,
    }


def _done(want: Want, found: dict) -> tuple[str, dict]:
    return want.unit, {**want.row, ARCHIVE: found}


def robots_key(element: tuple[str, dict]) -> tuple[str, tuple[str, dict]]:
    """A resolved pair keyed by its captured image's robots.txt URL (misses by their own)."""
    found = element[1][ARCHIVE]
    url = found.get("url") or element[1]["url"] or ""
    return URL + (canonical_url(origin_of(url) + "/robots.txt") or ""), element


def attach_robots(element) -> Iterator[tuple[str, dict]]:
    """Each pair with the archived robots.txt of its image's host (nearest the image's capture),
    when the archive holds an answer (2xx, 4xx or 5xx; a redirect is not followed here)."""
    _, groups = element
    answers = [
        c
        for c in groups["have"]
        if c.kind != "revisit" and c.http_status is not None and not 300 <= c.http_status < 400
    ]
    answers.sort(key=lambda c: (c.date, c.file, c.offset, c.inner))
    for unit, row in groups["want"]:
        found = row[ARCHIVE]
        if found["status"] == "ok" and answers:
            robots = choose(answers, found["file"], found["date"])
            found = {**found, "robots": (robots.file, robots.offset, robots.inner, robots.source)}
            row = {**row, ARCHIVE: found}
        yield unit, row


def replan(element: tuple[str, dict], only: bool) -> tuple[str, dict]:
    """Answered by the archive (or refused without the network): an ``archive`` unit; a pair
    the archive does not hold, fetched live: back to its host, as if no archive were given."""
    unit, row = element
    found = row[ARCHIVE]
    if found["status"] == NOT_IN_ARCHIVE and not only:
        row = {key: value for key, value in row.items() if key != ARCHIVE}
        return unit, row
    row = {**row, ARCHIVE_SOURCE: found.get("source") or found["status"]}
    return ARCHIVE_UNIT + unit, row


class ResolveInArchive(beam.PTransform):
    """``(host, pair)`` in, ``(unit, pair)`` out: each pair with its archived record's place,
    or sent on live (see the module docstring)."""

    def __init__(self, settings: ArchiveSettings):
        super().__init__()
        self.settings = settings

    def expand(self, keyed):
        if self.settings.indexes:
            captures = (
                keyed.pipeline
                | "IndexFiles" >> beam.Create(list(self.settings.indexes))
                | "SpreadIndexes" >> beam.Reshuffle()
                | "ReadCdxj" >> beam.ParDo(ReadCdxj(self.settings.files))
            )
        else:
            captures = (
                keyed.pipeline
                | "ArchiveFiles" >> beam.Create(list(self.settings.files))
                | "SpreadFiles" >> beam.Reshuffle()
                | "IndexArchive" >> beam.ParDo(IndexArchive())
            )
        pending = keyed | "FirstKey" >> beam.Map(first_want)
        done = []
        for lookup in range(LOOKUPS):
            joined = {"want": pending, "have": captures} | f"Join{lookup}" >> beam.CoGroupByKey()
            chosen = joined | f"Choose{lookup}" >> beam.ParDo(
                Choose(last=lookup == LOOKUPS - 1)
            ).with_outputs(NEXT, main="done")
            done.append(chosen.done)
            pending = chosen[NEXT]
        resolved = done | "Resolved" >> beam.Flatten()
        if self.settings.robots:
            resolved = (
                {"want": resolved | "RobotsKey" >> beam.Map(robots_key), "have": captures}
                | "JoinRobots" >> beam.CoGroupByKey()
                | "AttachRobots" >> beam.FlatMap(attach_robots)
            )
        return resolved | "Replan" >> beam.Map(replan, self.settings.only)


# --- reading --------------------------------------------------------------------------------


def _never_fetch(url: str):
    raise AssertionError(f"an archived robots.txt is never fetched ({url})")


class ArchiveReader:
    """One fetch list's reads from the archive: its open files and the robots.txt it applied."""

    def __init__(self, settings: ArchiveSettings):
        self.settings = settings
        self.handles: dict[str, object] = {}
        self.robots: dict[str, RobotsCache] = {}

    def close(self) -> None:
        for handle in self.handles.values():
            handle.close()
        self.handles = {}

    def _record(self, file: str, offset: int, inner: int):
        if file not in self.handles:
            self.handles[file] = open_raw(file)
        cap = self.settings.max_bytes + (1 << 20)  # the HTTP head besides the body
        return record_at(self.handles[file], offset, inner, cap)

    def result(self, row: dict) -> FetchResult | dict:
        """The pair's archived answer as a FetchResult (what a live fetch would have given),
        or the download columns of its refusal."""
        found = row[ARCHIVE]
        if found["status"] != "ok":
            return {"status": found["status"], "error": found["error"]}
        source = found["source"]
        record = self._record(found["file"], found["offset"], found["inner"])
        if isinstance(record, Damage):
            name = "truncated" if "truncated" in record.reason else "archive_damaged"
            return {"status": name, "error": f"archived record {source}: {record.reason}"}
        limit = self.settings.max_bytes
        if record.clipped:
            return {"status": "too_large", "error": f"{source}: record over {limit} bytes"}
        if record.type == "resource":
            headers = {"content-type": record.headers.get("content-type", "")}
            status, payload = 200, record.block
        else:
            response = parse_http_response(record.block)
            if response is None:
                return {"status": "archive_damaged", "error": f"{source}: no HTTP message"}
            headers, status, payload = response.headers, response.status, response.payload
            refusal = self._refusal(found, record.block)
            if refusal is not None:
                return refusal
        body = decoded_payload(headers, payload)
        if len(body) > limit:
            return {"status": "too_large", "error": f"{source}: body over {limit} bytes"}
        return FetchResult(row["url"], source, "ok", status, headers, body)

    def _refusal(self, found: dict, block: bytes) -> dict | None:
        """The archived consent signals, applied as a live fetch applies them."""
        token = self.settings.agent_token
        if self.settings.x_robots:
            directive = opts_out(header_values(block, "x-robots-tag"), token)
            if directive is not None:
                return {"status": "x_robots_tag", "error": f"X-Robots-Tag: {directive} (archived)"}
        robots = found.get("robots")
        if self.settings.robots and robots:
            refusal = self._robots_cache(robots, origin_of(found["url"])).refusal(found["url"])
            if refusal is not None:
                return {"status": refusal[0], "error": f"{refusal[1]} (archived at {robots[3]})"}
        return None

    def _robots_cache(self, robots: tuple, origin: str) -> RobotsCache:
        file, offset, inner, source = robots
        if source not in self.robots:
            record = self._record(file, offset, inner)
            response = None if isinstance(record, Damage) else parse_http_response(record.block)
            if response is None:
                seed = (None, None)  # unreadable: as a live robots.txt that did not answer
            else:
                seed = (response.status, decoded_payload(response.headers, response.payload))
            known = {origin: seed}
            self.robots[source] = RobotsCache(_never_fetch, self.settings.agent_token, known=known)
        return self.robots[source]


def records_in_order(
    order: list[dict],
    settings: ArchiveSettings,
    process: Callable[[FetchResult], dict],
    fetch_map: Callable[[Iterable[str], Callable], Iterator[dict]],
) -> Iterator[dict]:
    """A list's download columns in its order: archived pairs read here, the others fetched
    live through ``fetch_map`` (the worker's fetcher, with the list's politeness)."""

    def live(result: FetchResult) -> dict:
        return {**process(result), IMAGE_SOURCE.name: result.final_url or result.url}

    live_rows = (row["url"] or "" for row in order if ARCHIVE not in row)
    fetched = fetch_map(live_rows, live)
    reader = ArchiveReader(settings)
    try:
        for row in order:
            if ARCHIVE not in row:
                yield next(fetched)
                continue
            answer = reader.result(row)
            if isinstance(answer, dict):
                yield {**answer, IMAGE_SOURCE.name: None}
            else:
                yield {**process(answer), IMAGE_SOURCE.name: answer.final_url}
    finally:
        reader.close()


def archive_parts(unit: str, rows: Iterable[dict], rows_per_shard: int) -> list[Part]:
    """An archive unit's parts: every pair (no host budget: nothing is requested), split in
    lists of ``rows_per_shard`` so a large collection spreads over the workers."""
    rows = list(rows)
    return split_host(unit, rows, 0, max(1, len(rows)), rows_per_shard)
