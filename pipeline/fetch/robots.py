"""robots.txt (RFC 9309) with a per-host cache, and X-Robots-Tag opt-outs, for one agent token.

The cache does not fetch by itself: it is given a ``fetch(url) -> (http_status, body)`` so
robots.txt goes through the same SSRF guard, politeness and byte cap as every other request.
"""

from __future__ import annotations

import hashlib
import re
import threading
import time
import urllib.parse
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

ROBOTS_MAX_BYTES = 500 * 1024  # RFC 9309: parse at least 500 KiB
OPT_OUT_DIRECTIVES = frozenset({"noai", "noimageai", "noindex", "noimageindex", "none"})
# Directives that carry a value after a colon, so a colon does not always start an agent name.
_VALUED_DIRECTIVES = frozenset(
    {"unavailable_after", "max-snippet", "max-image-preview", "max-video-preview"}
)

RobotsFetch = Callable[[str], tuple[int | None, bytes | None]]
RobotsSeed = tuple[int | None, bytes | None]  # (HTTP status, body) fetched earlier this run


@dataclass(frozen=True)
class PolicyRecord:
    """A policy file that was applied: which, from where, what came back, and when.

    ``outcome``: ``rules`` (parsed), ``missing`` (4xx: no restrictions) or ``unreachable``
    (5xx, 429 or no answer: RFC 9309's complete disallow). A file read from a web archive
    has ``source`` (``file@offset`` of its record) and its capture time as ``fetched_at``.
    """

    origin: str
    file: str
    http_status: int | None
    outcome: str
    sha256: str | None
    size: int | None
    fetched_at: str  # ISO 8601, UTC
    source: str | None = None  # the archived record's file@offset; None: fetched live


def policy_record(origin: str, file: str, status: int | None, body: bytes | None) -> PolicyRecord:
    outcome = robots_outcome(status)
    digest = hashlib.sha256(body).hexdigest() if body is not None else None
    when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    size = len(body) if body is not None else None
    return PolicyRecord(origin, file, status, outcome, digest, size, when)


def robots_outcome(status: int | None) -> str:
    """What a robots.txt answer means (RFC 9309, section 2.3.1)."""
    if status is not None and 200 <= status < 300:
        return "rules"
    if status is not None and 400 <= status < 500 and status != 429:
        return "missing"
    return "unreachable"


def x_robots_directives(values: Iterable[str], agent_token: str) -> set[str]:
    """The X-Robots-Tag directives that apply to agent_token, from every header line.

    A line ``googlebot: noindex, nofollow`` applies to googlebot only; a line without an
    agent prefix applies to everyone.
    """
    token = agent_token.lower()
    applying: set[str] = set()
    for value in values:
        agent = None
        for item in value.split(","):
            item = item.strip().lower()
            name, colon, rest = item.partition(":")
            if colon and name.strip() not in _VALUED_DIRECTIVES:
                agent, item = name.strip(), rest.strip()
            if item and (agent is None or agent == token):
                applying.add(item.split(":")[0].strip())
    return applying


def opts_out(values: Iterable[str], agent_token: str) -> str | None:
    """The first opt-out directive (noai, noimageai, noindex, ...) for agent_token, or None."""
    found = sorted(x_robots_directives(values, agent_token) & OPT_OUT_DIRECTIVES)
    return found[0] if found else None


@dataclass
class RobotsRules:
    """The rules of the group that applies to one agent; longest match wins, allow on ties.

    ``unreachable`` says why robots.txt could not be had (``HTTP 503``, ``no answer``), when
    RFC 9309's complete disallow comes from that rather than from the site's own rules.
    """

    allow_all: bool = False
    disallow_all: bool = False
    rules: list[tuple[bool, re.Pattern, int]] = field(default_factory=list)
    unreachable: str = ""

    def allowed(self, path: str) -> bool:
        if self.disallow_all:
            return False
        if self.allow_all:
            return True
        path = _normalise_path(path)
        best_length, verdict = -1, True
        for allow, pattern, length in self.rules:
            if pattern.match(path) and (length > best_length or (length == best_length and allow)):
                best_length, verdict = length, allow
        return verdict


def _normalise_path(path: str) -> str:
    """Percent-encodes what must be, decodes unreserved escapes, so both sides compare alike."""
    return urllib.parse.quote(urllib.parse.unquote(path or "/"), safe="/?=&;:@!$'()*+,%~-._")


def _pattern(path: str) -> re.Pattern:
    anchored = path.endswith("$")
    body = _normalise_path(path[:-1] if anchored else path)
    regex = ".*".join(re.escape(piece) for piece in body.split("*"))
    return re.compile(regex + ("$" if anchored else ""))


def parse_robots(text: str, agent_token: str) -> RobotsRules:
    """The rules for agent_token: its own groups if any name it, else the ``*`` groups."""
    token = agent_token.lower()
    groups: dict[str, list[tuple[bool, str]]] = {}
    agents: list[str] = []
    in_rules = False
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        key, colon, value = line.partition(":")
        if not colon:
            continue
        key, value = key.strip().lower(), value.strip()
        if key == "user-agent":
            if in_rules:
                agents, in_rules = [], False
            agents.append(value.lower())
        elif key in ("allow", "disallow") and agents:
            in_rules = True
            for agent in agents:
                groups.setdefault(agent, []).append((key == "allow", value))
    chosen = groups.get(token, groups.get("*", []))
    rules = [(allow, _pattern(path), len(path)) for allow, path in chosen if path]
    return RobotsRules(rules=rules)


def rules_of_answer(status: int | None, body: bytes | None, agent_token: str) -> RobotsRules:
    """The rules one robots.txt answer gives our agent (RFC 9309)."""
    outcome = robots_outcome(status)
    if outcome == "rules":
        text = (body or b"")[:ROBOTS_MAX_BYTES].decode("utf-8", "replace")
        return parse_robots(text, agent_token)
    if outcome == "missing":
        return RobotsRules(allow_all=True)  # no robots.txt: no restrictions
    why = f"HTTP {status}" if status is not None else "no answer"
    return RobotsRules(disallow_all=True, unreachable=why)


def origin_of(url: str) -> str:
    """scheme://host[:port] of a URL: robots.txt's scope (RFC 9309)."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.rpartition('@')[2].lower()}"


class RobotsCache:
    """robots.txt per scheme://host:port, fetched once per fetch list (so once per host and
    run, pipeline/download/plan.py) and kept (bounded LRU).

    Per RFC 9309: 2xx is parsed, 4xx means no restrictions, 5xx, 429 or no answer means
    the whole site is disallowed (we cannot tell what the owner wants, so we stay away).
    That refusal is named ``robots_unreachable``, apart from the owner's own
    ``robots_disallowed``: a host that is down is not a site that said no.
    """

    def __init__(
        self,
        fetch: RobotsFetch,
        agent_token: str,
        max_entries: int = 50_000,
        known: Mapping[str, RobotsSeed] | None = None,
    ):
        self.fetch = fetch
        self.agent_token = agent_token
        self.max_entries = max_entries
        self.known = dict(known or {})  # origin -> answer fetched earlier in this run
        self.records: list[PolicyRecord] = []  # every robots.txt this cache fetched
        self._rules: OrderedDict[str, RobotsRules] = OrderedDict()
        self._lock = threading.Lock()
        self._origin_locks: dict[str, threading.Lock] = {}

    def allowed(self, url: str) -> bool:
        return self.refusal(url) is None

    def refusal(self, url: str) -> tuple[str, str] | None:
        """None if our agent may fetch ``url``; else (status, why): ``robots_disallowed``
        (the site's rules say no) or ``robots_unreachable`` (its robots.txt could not be
        had, which RFC 9309 treats as a complete disallow)."""
        parts = urllib.parse.urlsplit(url)
        origin = origin_of(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        rules = self.rules_for(origin)
        if rules.allowed(path):
            return None
        host = parts.hostname or origin
        if rules.unreachable:
            why = f"robots.txt of {host} unreachable ({rules.unreachable}), so the whole site"
            return "robots_unreachable", why + " is off limits (RFC 9309)"
        return "robots_disallowed", f"robots.txt of {host} disallows {path or '/'}"

    def rules_for(self, origin: str) -> RobotsRules:
        rules = self._get(origin)
        if rules is None:
            with self._lock:
                origin_lock = self._origin_locks.setdefault(origin, threading.Lock())
            with origin_lock:  # one robots.txt request per host, however many threads ask
                rules = self._get(origin)
                if rules is None:
                    rules = self._load(origin)
                    self._put(origin, rules)
        return rules

    def _load(self, origin: str) -> RobotsRules:
        if origin in self.known:
            status, body = self.known[origin]
        else:
            status, body = self.fetch(origin + "/robots.txt")
            with self._lock:
                self.records.append(policy_record(origin, "robots.txt", status, body))
        return rules_of_answer(status, body, self.agent_token)

    def _get(self, origin: str) -> RobotsRules | None:
        with self._lock:
            rules = self._rules.get(origin)
            if rules is not None:
                self._rules.move_to_end(origin)
            return rules

    def _put(self, origin: str, rules: RobotsRules) -> None:
        with self._lock:
            self._rules[origin] = rules
            while len(self._rules) > self.max_entries:
                evicted, _ = self._rules.popitem(last=False)
                self._origin_locks.pop(evicted, None)
