"""align-download --archive: images read from WARC/ARC captures instead of the live web.

Located without holding the archive, the pairs or any record's bytes in memory:

1. The archive is indexed into scratch files by key bucket (archive_index.py: one pass per
   archive file, or its CDXJ index), and the pairs are spilled the same way by their image
   URL's key. There are as many buckets as fetch lists.
2. Each bucket is one fetch list (``job.ArchiveLists``): its pairs are resolved against the
   captures they ask for (``resolve``): the capture in the page's file, else the nearest in
   time to the page's capture (``page_date``), else the latest; a revisit sends the pair on
   to its original (by WARC-Refers-To-Target-URI and -Date, else by digest), a 3xx with
   Location to its target, up to ``LOOKUPS`` keys in all. The host's archived policy files
   (robots.txt, ai.txt, tdmrep.json) nearest the image's capture are attached
   (``attach_policies``).
3. The list reads its records by offset, a row group at a time sorted by file and offset
   (``records_in_order``, ``ArchiveReader``), and builds each row with the same
   ``image_record`` as a live fetch: decode, orientation, resize, rules.

Archived pairs skip the host planning (no request is made, so no politeness applies). Pairs
not in the archive are planned by host and fetched live, unless ``--archive-only``: then they
are rejected as ``not_in_archive`` and the job makes no network request.
"""

from __future__ import annotations

import argparse
import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace

import pyarrow as pa

from commandline.flags import UsageError
from pipeline.download.archive_index import DIGEST, URL, CaptureLookup, pair_key
from pipeline.fetch.consent import TDM_RESERVATION, tdm_reserves
from pipeline.fetch.fetcher import FetchConfig, FetchResult, http_failure_name
from pipeline.fetch.policy import PATHS, HostPolicies
from pipeline.fetch.robots import PolicyRecord, RobotsSeed, opts_out, origin_of, robots_outcome
from pipeline.shards import match_files, open_raw
from pipeline.warc.capture import (
    Capture,
    canonical_url,
    capture_of,
    decoded_payload,
    header_values,
    record_at,
    same_file,
    seconds_of,
)
from pipeline.warc.reader import Damage, parse_http_response

ARCHIVE = "_archive"  # a resolved pair's scratch key: where its bytes are, or why not
ARCHIVE_SOURCE = "_archive_source"  # what the plan's fingerprint adds for such a pair
ARCHIVE_UNIT = "archive"  # the unit of an archive list's one part
IMAGE_SOURCE = pa.field("image_source", pa.string())  # file@offset of the record, or the URL
NOT_IN_ARCHIVE = "not_in_archive"
LOOKUPS = 4  # keys per pair: its URL, then up to 3 redirects or revisits
READ_BATCH = 256  # records read at a time, sorted by file and offset


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
    policy_files: tuple[str, ...] = ()  # beside robots.txt: ai.txt, tdmrep.json
    tdm_header: bool = False  # TDMRep's tdm-reservation: 1 on the image response refuses it


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
        tuple(config.policy_files),
        config.respect_tdm_header,
    )


def with_image_source(schema: pa.Schema) -> pa.Schema:
    """The download's schema plus ``image_source`` (kept where an input already has it)."""
    return schema if IMAGE_SOURCE.name in schema.names else schema.append(IMAGE_SOURCE)


# --- resolving ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Want:
    """A pair looking for its record: what it prefers, how far it went."""

    page_file: str
    date: str  # the capture time it prefers: the page's, or a revisit's original's
    originals_only: bool = False  # following a revisit: another revisit is no answer
    came_by: str = ""  # how it got here (for the reject's detail)


def first_want(row: dict) -> tuple[str, Want]:
    source = row.get("source") or ""
    page_file = source.rpartition("@")[0] if "@" in source else ""
    absent = f"{row['url']} was not captured"
    return pair_key(row["url"]), Want(page_file, row.get("page_date") or "", came_by=absent)


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


def step(want: Want, captures: list[Capture], last: bool) -> dict | tuple[str, Want]:
    """One key's answer for a pair: where its bytes are or why not (a dict), or the next key
    to look under (a revisit's original, a redirect's target)."""
    if want.originals_only:
        captures = [c for c in captures if c.kind != "revisit"]
    if not captures:
        return {"status": NOT_IN_ARCHIVE, "error": want.came_by}
    chosen = choose(captures, want.page_file, want.date)
    if chosen.kind == "revisit":
        target = (URL + chosen.refers_to) if chosen.refers_to else None
        target = target or ((DIGEST + chosen.digest) if chosen.digest else None)
        if target is None:
            why = f"revisit {chosen.source} names no original"
            return {"status": NOT_IN_ARCHIVE, "error": why}
        why = f"the original of revisit {chosen.source} was not captured"
        onward = replace(want, date=chosen.refers_date or chosen.date, originals_only=True)
        return _next(target, replace(onward, came_by=why), last)
    if chosen.location or _unknown_location(chosen):
        chosen = replace(chosen, location=_location_of(chosen))
    if chosen.location:
        why = f"{chosen.source} redirects to {chosen.location}, which was not captured"
        return _next(URL + chosen.location, replace(want, originals_only=False, came_by=why), last)
    status = chosen.http_status
    if status is not None and not 200 <= status < 300:
        name = "bad_redirect" if 300 <= status < 400 else http_failure_name(status)
        return {"status": name, "error": f"archived HTTP {status} at {chosen.source}"}
    return _located(chosen)


def _next(key: str, want: Want, last: bool) -> dict | tuple[str, Want]:
    if last:
        why = f"more than {LOOKUPS - 1} redirects or revisits in the archive"
        return {"status": "too_many_redirects", "error": why}
    return key, want


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


def _in_order(captures: list[Capture]) -> list[Capture]:
    return sorted(captures, key=lambda c: (c.date, c.file, c.offset, c.inner))


def resolve(rows: list[dict], lookup: CaptureLookup) -> list[dict]:
    """Each row with ``ARCHIVE``: where its record is, or why it has none. One read of the
    index per round, for the keys the round's pairs look under."""
    pending = [(index, *first_want(row)) for index, row in enumerate(rows)]
    answers: list[dict | None] = [None] * len(rows)
    for round_ in range(LOOKUPS):
        found = lookup.find(key for _, key, _ in pending)
        onward = []
        for index, key, want in pending:
            answer = step(want, _in_order(found.get(key, [])), last=round_ == LOOKUPS - 1)
            if isinstance(answer, dict):
                answers[index] = answer
            else:
                onward.append((index, *answer))
        pending = onward
    return [{**row, ARCHIVE: answer} for row, answer in zip(rows, answers, strict=True)]


def attach_policies(rows: list[dict], lookup: CaptureLookup, files: Iterable[str]) -> list[dict]:
    """Each located pair with its image host's archived policy files (robots.txt and
    ``files``) when the archive answered them (2xx, 4xx or 5xx; a redirect is not followed),
    the capture nearest the image's: ``(file name, archive file, offset, inner, source,
    date)`` each."""
    names = ("robots.txt", *files)

    def url_of(row: dict, name: str) -> str:
        return canonical_url(origin_of(row[ARCHIVE]["url"]) + PATHS[name]) or ""

    located = [row for row in rows if row[ARCHIVE]["status"] == "ok"]
    found = lookup.policies({url_of(row, name) for row in located for name in names})
    out = []
    for row in rows:
        archived = row[ARCHIVE]
        if archived["status"] == "ok":
            policies = []
            for name in names:
                answers = [c for c in found.get(url_of(row, name), []) if _answered(c)]
                if answers:
                    c = choose(_in_order(answers), archived["file"], archived["date"])
                    policies.append((name, c.file, c.offset, c.inner, c.source, c.date))
            row = {**row, ARCHIVE: {**archived, "policies": tuple(policies)}}
        out.append(row)
    return out


def _answered(capture: Capture) -> bool:
    status = capture.http_status
    return capture.kind != "revisit" and status is not None and not 300 <= status < 400


def archive_source(row: dict) -> str:
    """What a list's fingerprint holds for an archived pair: its record and policy files."""
    archived = row[ARCHIVE]
    policies = ",".join(policy[4] for policy in archived.get("policies", ()))
    return (archived.get("source") or archived["status"]) + (f"|{policies}" if policies else "")


# --- reading --------------------------------------------------------------------------------


def _never_fetch(url: str):
    raise AssertionError(f"an archived policy file is never fetched ({url})")


class ArchiveReader:
    """One fetch list's reads from the archive: its open files, and the policy files it
    applied (``records``, for the list's policy record)."""

    def __init__(self, settings: ArchiveSettings):
        self.settings = settings
        self.handles: dict[str, object] = {}
        self.policies: dict[tuple, HostPolicies] = {}
        self.applied: dict[str, PolicyRecord] = {}

    @property
    def records(self) -> list[PolicyRecord]:
        return [self.applied[source] for source in sorted(self.applied)]

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
        if self.settings.x_robots:
            directive = opts_out(header_values(block, "x-robots-tag"), self.settings.agent_token)
            if directive is not None:
                return {"status": "x_robots_tag", "error": f"X-Robots-Tag: {directive} (archived)"}
        if self.settings.tdm_header and tdm_reserves(header_values(block, "tdm-reservation")):
            return {"status": TDM_RESERVATION, "error": "tdm-reservation: 1 (archived)"}
        policies = found.get("policies", ())
        if not (self.settings.robots and policies):
            return None
        refusal = self._host_policies(origin_of(found["url"]), policies).refusal(found["url"])
        if refusal is None:
            return None
        where = ", ".join(policy[4] for policy in policies)
        return {"status": refusal[0], "error": f"{refusal[1]} (archived at {where})"}

    def _host_policies(self, origin: str, policies: tuple) -> HostPolicies:
        """The host's policies from these archived files; a file the archive did not capture
        reserves nothing (it cannot be checked offline)."""
        key = (origin, policies)
        if key not in self.policies:
            known: dict[tuple[str, str], RobotsSeed] = {
                (origin, name): (404, None) for name in ("robots.txt", *self.settings.policy_files)
            }
            for name, file, offset, inner, source, date in policies:
                known[(origin, name)] = self._policy_seed(origin, name, (file, offset, inner))
                self._note(origin, name, known[(origin, name)], source, date)
            self.policies[key] = HostPolicies(
                _never_fetch, self.settings.agent_token, self.settings.policy_files, known
            )
        return self.policies[key]

    def _policy_seed(self, origin: str, name: str, place: tuple) -> RobotsSeed:
        record = self._record(*place)
        response = None if isinstance(record, Damage) else parse_http_response(record.block)
        if response is None:
            return None, None  # unreadable: as a live file that did not answer
        return response.status, decoded_payload(response.headers, response.payload)

    def _note(self, origin: str, name: str, seed: RobotsSeed, source: str, date: str) -> None:
        status, body = seed
        digest = hashlib.sha256(body).hexdigest() if body is not None else None
        size = len(body) if body is not None else None
        outcome = robots_outcome(status)
        self.applied[source] = PolicyRecord(
            origin, name, status, outcome, digest, size, date, source=source
        )


def records_in_order(
    order: list[dict],
    reader: ArchiveReader,
    process: Callable[[FetchResult], dict],
    fetch_map: Callable[[Iterable[str], Callable], Iterator[dict]],
) -> Iterator[dict]:
    """A list's download columns in its order: archived pairs read here, ``READ_BATCH`` at a
    time in file and offset order (a sequential read of each file's part), the others fetched
    live through ``fetch_map`` (the worker's fetcher, with the list's politeness)."""

    def live(result: FetchResult) -> dict:
        return {**process(result), IMAGE_SOURCE.name: result.final_url or result.url}

    def archived(row: dict) -> dict:
        answer = reader.result(row)
        if isinstance(answer, dict):
            return {**answer, IMAGE_SOURCE.name: None}
        return {**process(answer), IMAGE_SOURCE.name: answer.final_url}

    fetched = fetch_map((row["url"] or "" for row in order if ARCHIVE not in row), live)
    for start in range(0, len(order), READ_BATCH):
        batch = order[start : start + READ_BATCH]
        places = sorted((_place(row), index) for index, row in enumerate(batch) if ARCHIVE in row)
        read = {index: archived(batch[index]) for _, index in places}
        for index, row in enumerate(batch):
            yield read[index] if ARCHIVE in row else next(fetched)


def _place(row: dict) -> tuple[str, int, int]:
    found = row[ARCHIVE]
    return found.get("file", ""), found.get("offset", -1), found.get("inner", 0)
