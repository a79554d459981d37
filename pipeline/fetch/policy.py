"""A host's policy files, fetched once per host and run: robots.txt, then ai.txt and
/.well-known/tdmrep.json where the job asks for them (align-download does; a page crawl reads
robots.txt only).

robots.txt is RobotsCache's (RFC 9309). The other files are read with pipeline/fetch/consent.py
and fetched the same way (the fetch list's gates, so they count against the host's caps),
only for a host whose robots.txt lets us in. A file that is missing (4xx) or does not parse
reserves nothing. One that cannot be had (5xx, 429, no answer) from a host whose robots.txt
answered leaves the host's wishes unknown: its URLs are *deferred* to a later run
(``deferred_policy_unreachable``), neither fetched against a reservation we could not read
nor dropped for good.
"""

from __future__ import annotations

import threading
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from pipeline.fetch.consent import (
    AI_TXT,
    AI_TXT_PATH,
    TDMREP_JSON,
    TDMREP_PATH,
    TdmRule,
    ai_txt_reservation,
    parse_ai_txt,
    parse_tdmrep,
    tdmrep_reservation,
)
from pipeline.fetch.robots import (
    PolicyRecord,
    RobotsCache,
    RobotsFetch,
    RobotsRules,
    RobotsSeed,
    origin_of,
    policy_record,
    robots_outcome,
)

AI_TXT_FILE = "ai.txt"
TDMREP_FILE = "tdmrep.json"
HOST_FILES = (AI_TXT_FILE, TDMREP_FILE)  # what align-download reads beside robots.txt
PATHS = {"robots.txt": "/robots.txt", AI_TXT_FILE: AI_TXT_PATH, TDMREP_FILE: TDMREP_PATH}
POLICY_UNREACHABLE = "deferred_policy_unreachable"  # a FetchResult status: try in a later run


@dataclass
class _Origin:
    """What one origin's extra files say: their rules, or which one could not be had."""

    ai_txt: RobotsRules | None = None
    tdmrep: list[TdmRule] = field(default_factory=list)
    unreachable: str = ""  # "ai.txt (HTTP 503)"


class HostPolicies:
    """robots.txt and the ``files`` a job honours, per origin, loaded on first use.

    ``refusal(url)`` is None when every file lets our agent fetch ``url``, else
    (status, why): ``robots_disallowed``, ``robots_unreachable``, ``ai_txt``,
    ``tdmrep_json`` or POLICY_UNREACHABLE. ``records`` lists every file fetched (not the
    ``known`` ones, which the planner fetched and recorded).
    """

    def __init__(
        self,
        fetch: RobotsFetch,
        agent_token: str,
        files: Sequence[str] = (),
        known: Mapping[tuple[str, str], RobotsSeed] | None = None,
    ):
        known = dict(known or {})
        robots_known = {
            origin: seed for (origin, file), seed in known.items() if file == "robots.txt"
        }
        self.robots = RobotsCache(fetch, agent_token, known=robots_known)
        self.fetch, self.agent_token, self.files = fetch, agent_token, tuple(files)
        self.known = known
        self._records: list[PolicyRecord] = []
        self._origins: dict[str, _Origin] = {}
        self._lock = threading.Lock()
        self._origin_locks: dict[str, threading.Lock] = {}

    @property
    def records(self) -> list[PolicyRecord]:
        with self._lock:
            return [*self.robots.records, *self._records]

    def refusal(self, url: str) -> tuple[str, str] | None:
        refusal = self.robots.refusal(url)
        if refusal is not None or not self.files:
            return refusal
        origin = self._origin(origin_of(url))
        if origin.unreachable:
            return POLICY_UNREACHABLE, f"{origin.unreachable}: the owner's wishes are unknown"
        if origin.ai_txt is not None and (found := ai_txt_reservation(origin.ai_txt, url)):
            return AI_TXT, found.detail
        if found := tdmrep_reservation(origin.tdmrep, url):
            return TDMREP_JSON, found.detail
        return None

    def _origin(self, origin: str) -> _Origin:
        with self._lock:
            if origin in self._origins:
                return self._origins[origin]
            lock = self._origin_locks.setdefault(origin, threading.Lock())
        with lock:  # one request per file and origin, however many threads ask
            with self._lock:
                if origin in self._origins:
                    return self._origins[origin]
            loaded = self._load(origin)
            with self._lock:
                self._origins[origin] = loaded
            return loaded

    def _load(self, origin: str) -> _Origin:
        loaded = _Origin()
        for file in self.files:
            status, body = self._answer(origin, file)
            outcome = robots_outcome(status)
            if outcome == "unreachable":
                why = f"HTTP {status}" if status is not None else "no answer"
                loaded.unreachable = f"{file} of {urllib.parse.urlsplit(origin).hostname} ({why})"
                return loaded  # the host's wishes are unknown: ask for nothing more
            if outcome == "rules" and file == AI_TXT_FILE:
                loaded.ai_txt = parse_ai_txt(body or b"", self.agent_token)
            elif outcome == "rules" and file == TDMREP_FILE:
                loaded.tdmrep = parse_tdmrep(body or b"")
        return loaded

    def _answer(self, origin: str, file: str) -> RobotsSeed:
        if (origin, file) in self.known:
            return self.known[(origin, file)]
        status, body = self.fetch(origin + PATHS[file])
        with self._lock:
            self._records.append(policy_record(origin, file, status, body))
        return status, body


def prefetch(
    fetch: RobotsFetch, origins: Sequence[str], files: Sequence[str]
) -> tuple[dict[tuple[str, str], RobotsSeed], list[PolicyRecord]]:
    """Every policy file of these origins, fetched once (robots.txt first; the others only
    where robots.txt answered): the answers, for each part of a split host, and the records."""
    answers: dict[tuple[str, str], RobotsSeed] = {}
    records = []
    for origin in origins:
        for file in ("robots.txt", *files):
            answers[(origin, file)] = fetch(origin + PATHS[file])
            records.append(policy_record(origin, file, *answers[(origin, file)]))
            if robots_outcome(answers[(origin, file)][0]) == "unreachable":
                break
    return answers, records
