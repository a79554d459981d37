"""The safe, polite, concurrent HTTP fetcher shared by align-crawl (pages) and align-download.

Safe: only http(s); every hop's host is resolved once and checked by the SSRF guard, and the
connection goes to exactly that address (Host header and TLS SNI keep the name). Polite:
robots.txt and X-Robots-Tag are honoured for our agent token, each host gets a concurrency and
rate cap, ``Retry-After`` pauses the host. Bounded: connect/read/total timeouts and a byte cap.
Every URL ends as one FetchResult whose ``status`` is ``ok`` or a named failure.
"""

from __future__ import annotations

import email.utils
import queue
import re
import time
import urllib.parse
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TypeVar

import urllib3
from urllib3 import exceptions as u3
from urllib3._collections import RecentlyUsedContainer

from pipeline.fetch.consent import TDM_RESERVATION, tdm_reserves
from pipeline.fetch.hostgate import BudgetSpent, HostGates, Share
from pipeline.fetch.netguard import AddressGuard, BlockedAddress, InvalidHost, Resolve
from pipeline.fetch.policy import HostPolicies
from pipeline.fetch.robots import RobotsCache, RobotsSeed, opts_out
from pipeline.fetch.units import UnitOf, unit_of_host

T = TypeVar("T")

USER_AGENT = "align-recipe/0.1 (+https://github.com/align-recipe/align-recipe)"
AGENT_TOKEN = "align-recipe"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
DEFERRED_HOST_TIME = "deferred_host_time_budget"  # a FetchResult status: not fetched, try later
_OBJECT_REPR = re.compile(r"<[^<>]* object at 0x[0-9a-f]+>")
_DRAIN_BYTES = 64 * 1024  # read and discard at most this much to keep a connection alive
_READ_CHUNK = 256 * 1024  # read1: at most one socket read, so the deadline is checked often


@dataclass
class FetchConfig:
    """How the fetcher behaves; defaults are polite to hosts and safe for the machine."""

    user_agent: str = USER_AGENT
    agent_token: str = AGENT_TOKEN  # the robots.txt / X-Robots-Tag product token
    accept: str = "*/*"
    connect_timeout: float = 10.0
    read_timeout: float = 20.0  # per socket read
    total_timeout: float = 60.0  # for one response's body, however slowly it trickles
    max_bytes: int = 16 * 2**20
    max_redirects: int = 5
    allow_private_networks: bool = False
    respect_robots: bool = True
    respect_x_robots_tag: bool = True
    respect_tdm_header: bool = False  # TDMRep's tdm-reservation: 1 refuses the response
    policy_files: tuple[str, ...] = ()  # beside robots.txt, once per host: ai.txt, tdmrep.json
    per_host_concurrency: int = 4  # connections per host, for the whole job
    per_host_rate: float = 8.0  # request starts per second per host, whole job; 0 = no cap
    threads: int = 64  # requests in flight per Fetcher (per worker process)
    retries: int = 2  # extra attempts after a transient failure (429, 5xx, reset)
    backoff: float = 1.0  # seconds before the first retry, doubling after
    max_retry_after: float = 30.0  # a longer Retry-After gives up instead of waiting
    verify_tls: bool = True
    decode_content: bool = True  # undo Content-Encoding; False: the body as sent, capped as sent


@dataclass
class FetchResult:
    url: str
    final_url: str
    status: str  # "ok" or a failure name: http_404, http_5xx, timeout, blocked_address, ...
    http_status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)  # lower-case keys
    body: bytes | None = None  # only when ok
    error: str | None = None  # human-readable detail of a failure


class FetchFailure(Exception):
    """A named failure that ends a fetch."""

    def __init__(self, status: str, error: str, http_status: int | None = None):
        super().__init__(error)
        self.status = status
        self.error = error
        self.http_status = http_status
        self.url: str | None = None  # the hop that failed


@dataclass
class _Answer:
    http_status: int
    headers: dict[str, str]
    location: str | None = None
    body: bytes | None = None


def describe(error: BaseException) -> str:
    """An exception as text without object addresses, so reruns write identical errors."""
    return _OBJECT_REPR.sub("<connection>", f"{type(error).__name__}: {error}")[:500]


def http_failure_name(code: int) -> str:
    """http_404, http_429, ... for client errors; http_5xx for every server error."""
    return "http_5xx" if 500 <= code < 600 else f"http_{code}"


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds: a number, or an HTTP date relative to now."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class _Pinned:
    """Connects to the address the guard checked, never re-resolving the name (no rebinding)."""

    def __init__(self, *args, pinned_ip: str, **kwargs):
        super().__init__(*args, **kwargs)
        self.pinned_ip = pinned_ip

    def _new_conn(self):
        self._dns_host = self.pinned_ip
        return super()._new_conn()


class _PinnedHTTPConnection(_Pinned, urllib3.connection.HTTPConnection):
    pass


class _PinnedHTTPSConnection(_Pinned, urllib3.connection.HTTPSConnection):
    """TLS to the checked address; SNI and certificate checks still use the host name."""


class _PinnedHTTPPool(urllib3.HTTPConnectionPool):
    ConnectionCls = _PinnedHTTPConnection


class _PinnedHTTPSPool(urllib3.HTTPSConnectionPool):
    ConnectionCls = _PinnedHTTPSConnection


@dataclass
class Politeness:
    """One fetch list's politeness: its hosts' gates, their robots.txt, and what a host is.

    A list owns its hosts for the whole job (pipeline/download/plan.py), so these caps and
    this robots.txt cache are the job's, not a worker's. ``robots.records`` is what was
    applied, for the job's policy record.
    """

    gates: HostGates
    policies: HostPolicies
    unit_of: UnitOf = unit_of_host

    @property
    def robots(self) -> RobotsCache:
        return self.policies.robots


class Fetcher:
    """Fetches URLs concurrently with a thread pool; one per worker, reused across bundles.

    Its own ``politeness`` serves callers that fetch without a fetch list (tests, a batch of
    pages); ``politeness(...)`` makes a fresh one for each list.
    """

    def __init__(
        self,
        config: FetchConfig | None = None,
        resolver: Resolve | None = None,
        guard: AddressGuard | None = None,
    ):
        self.config = config or FetchConfig()
        self.guard = guard or AddressGuard(self.config.allow_private_networks, resolver)
        self.default_politeness = self.politeness()
        self._pools = RecentlyUsedContainer(1000, dispose_func=lambda pool: pool.close())
        self._executor = ThreadPoolExecutor(self.config.threads, thread_name_prefix="fetch")
        self._timeout = urllib3.Timeout(
            connect=self.config.connect_timeout, read=self.config.read_timeout
        )

    # -- public API ------------------------------------------------------------------------

    def politeness(
        self,
        unit_of: UnitOf = unit_of_host,
        shares: dict[str, Share] | None = None,
        budget_seconds: float = 0.0,
        known_policies: dict[tuple[str, str], RobotsSeed] | None = None,
    ) -> Politeness:
        """Fresh gates and policy files for one fetch list (see Politeness); ``known``
        answers were fetched earlier in this run (a split host's, by the planner)."""
        gates = HostGates(
            self.config.per_host_concurrency, self.config.per_host_rate, shares, budget_seconds
        )

        def fetch_robots(url: str) -> tuple[int | None, bytes | None]:
            return self._fetch_robots(url, gates, unit_of)

        policies = HostPolicies(
            fetch_robots, self.config.agent_token, self.config.policy_files, known_policies
        )
        return Politeness(gates, policies, unit_of)

    @property
    def robots(self) -> RobotsCache:
        return self.default_politeness.robots

    def fetch(self, url: str, politeness: Politeness | None = None) -> FetchResult:
        """One URL, following redirects, as a FetchResult; never raises for network trouble."""
        try:
            answer, final_url = self._follow(url, politeness or self.default_politeness)
        except FetchFailure as failure:
            return FetchResult(
                url, failure.url or url, failure.status, failure.http_status, error=failure.error
            )
        except (UnicodeError, ValueError, u3.LocationValueError) as error:  # e.g. bad IDNA
            return FetchResult(url, url, "invalid_url", error=describe(error))
        except Exception as error:  # noqa: BLE001 (one odd URL must not end a worker's shard)
            return FetchResult(url, url, "fetch_error", error=describe(error))
        return FetchResult(url, final_url, "ok", answer.http_status, answer.headers, answer.body)

    def fetch_many(self, urls: Iterable[str]) -> list[FetchResult]:
        """Fetches concurrently; results in the order of ``urls``."""
        return list(self.map(urls))

    def map(
        self,
        urls: Iterable[str],
        process: Callable[[FetchResult], T] | None = None,
        window: int | None = None,
        politeness: Politeness | None = None,
    ) -> Iterator[T]:
        """Yields ``process(fetch(url))`` in input order, computed on the pool's threads.

        At most ``window`` URLs are taken from ``urls`` ahead of the last one yielded (bounded
        memory), and at most the host's concurrency of them per host are in flight, so a host
        with many URLs never occupies every thread.
        """
        window = window or max(1024, 8 * self.config.threads)
        politeness = politeness or self.default_politeness
        work = _Schedule(enumerate(urls), window, politeness)
        completed: queue.SimpleQueue[Future] = queue.SimpleQueue()
        in_flight: dict[Future, str | None] = {}
        done: dict[int, T] = {}
        next_index = 0
        while True:
            work.pull(next_index)
            for index, url, key in work.ready(self.config.threads - len(in_flight)):
                future = self._executor.submit(
                    self._fetch_and_process, index, url, process, politeness
                )
                in_flight[future] = key
                future.add_done_callback(completed.put)
            if not in_flight:
                break
            future = completed.get()
            work.finished(in_flight.pop(future))
            index, value = future.result()
            done[index] = value
            while next_index in done:
                yield done.pop(next_index)
                next_index += 1

    def release(self, units: set[str], unit_of: UnitOf) -> None:
        """Closes this worker's connections to ``units``: a finished fetch list leaves no idle
        connection open on a host that another worker may be fetching now."""
        for key in list(self._pools.keys()):
            scheme, host, port, _ = key
            if unit_of(f"{scheme}://{host}:{port}/") in units:
                try:
                    del self._pools[key]  # disposes: closes the pool's idle connections
                except KeyError:
                    pass

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self._pools.clear()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- one URL ---------------------------------------------------------------------------

    def _fetch_and_process(self, index: int, url: str, process, politeness: Politeness):
        result = self.fetch(url, politeness)
        return index, (process(result) if process is not None else result)

    def _follow(self, url: str, politeness: Politeness) -> tuple[_Answer, str]:
        """Follows redirects, checking every hop; returns the final answer and URL."""
        current, seen = url, set()
        try:
            for _ in range(self.config.max_redirects + 1):
                seen.add(current)
                answer = self._hop(current, politeness)
                if answer.location is None:
                    return answer, current
                current = urllib.parse.urljoin(current, answer.location)
                if current in seen:
                    raise FetchFailure("too_many_redirects", f"redirect loop at {current}")
            limit = self.config.max_redirects
            raise FetchFailure("too_many_redirects", f"more than {limit} redirects")
        except FetchFailure as failure:
            failure.url = current
            raise

    def _hop(self, url: str, politeness: Politeness) -> _Answer:
        scheme, host, port, target = _split(url)
        address = self._checked_address(host)
        refusal = politeness.policies.refusal(url) if self.config.respect_robots else None
        if refusal is not None:
            raise FetchFailure(*refusal)
        key = politeness.unit_of(url) or host
        for attempt in range(self.config.retries + 1):
            last = attempt == self.config.retries
            try:
                with _gated(politeness.gates, key):
                    answer = self._request(scheme, host, port, address, target)
            except FetchFailure as failure:
                if failure.status != "connection_error" or last:
                    raise
                time.sleep(self.config.backoff * 2**attempt)
                continue
            if answer.http_status not in _RETRY_STATUSES or last:
                break
            self._wait_before_retry(politeness.gates, key, answer, attempt)
        return self._judge(answer)

    def _checked_address(self, host: str) -> str:
        try:
            return self.guard.addresses(host)[0]
        except BlockedAddress as error:
            raise FetchFailure("blocked_address", str(error)) from None
        except InvalidHost as error:
            raise FetchFailure("invalid_url", str(error)) from None
        except OSError as error:
            raise FetchFailure("dns_error", f"{host}: {describe(error)}") from None

    def _wait_before_retry(self, gates: HostGates, key: str, answer: _Answer, attempt: int):
        delay = retry_after_seconds(answer.headers.get("retry-after"))
        if delay is None:
            delay = self.config.backoff * 2**attempt
        elif delay > self.config.max_retry_after:
            raise FetchFailure(
                http_failure_name(answer.http_status),
                f"HTTP {answer.http_status}, Retry-After {delay:.0f}s is too long",
                answer.http_status,
            )
        gates.pause(key, delay)  # the whole host waits, not only this request
        time.sleep(delay)

    def _judge(self, answer: _Answer) -> _Answer:
        code = answer.http_status
        if answer.location is not None or (200 <= code < 300 and answer.body is not None):
            return answer
        if code in _REDIRECTS:
            raise FetchFailure("bad_redirect", f"HTTP {code} without Location", code)
        raise FetchFailure(http_failure_name(code), f"HTTP {code}", code)

    def _request(self, scheme: str, host: str, port: int, address: str, target: str) -> _Answer:
        pool = self._pool(scheme, host, port, address)
        headers = {"User-Agent": self.config.user_agent, "Accept": self.config.accept}
        try:
            response = pool.urlopen(
                "GET",
                target,
                headers=headers,
                retries=False,
                redirect=False,
                timeout=self._timeout,
                preload_content=False,
                decode_content=self.config.decode_content,
            )
        except (u3.ConnectTimeoutError, u3.ReadTimeoutError, TimeoutError) as error:
            raise FetchFailure("timeout", f"{host}: {describe(error)}") from None
        except u3.SSLError as error:
            raise FetchFailure("tls_error", f"{host}: {describe(error)}") from None
        except (u3.HTTPError, OSError) as error:
            raise FetchFailure("connection_error", f"{host}: {describe(error)}") from None
        try:
            return self._answer(response)
        finally:
            response.release_conn()

    def _answer(self, response) -> _Answer:
        headers = {key.lower(): value for key, value in response.headers.items()}
        answer = _Answer(response.status, headers)
        if response.status in _REDIRECTS and "location" in headers:
            answer.location = headers["location"]
        if not 200 <= response.status < 300:
            _drain(response)
            return answer
        if self.config.respect_x_robots_tag:
            directive = opts_out(response.headers.getlist("x-robots-tag"), self.config.agent_token)
            if directive is not None:
                response.close()
                raise FetchFailure("x_robots_tag", f"X-Robots-Tag: {directive}", response.status)
        if self.config.respect_tdm_header and tdm_reserves(
            response.headers.getlist("tdm-reservation")
        ):
            response.close()
            raise FetchFailure(TDM_RESERVATION, "tdm-reservation: 1", response.status)
        answer.body = self._read_body(response)
        return answer

    def _read_body(self, response) -> bytes:
        limit = self.config.max_bytes
        length = response.headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            response.close()
            raise FetchFailure("too_large", f"Content-Length {length} > {limit}", response.status)
        deadline = time.monotonic() + self.config.total_timeout
        chunks, size = [], 0
        try:
            while chunk := response.read1(_READ_CHUNK):
                chunks.append(chunk)
                size += len(chunk)
                if size > limit:
                    response.close()
                    raise FetchFailure("too_large", f"body over {limit} bytes", response.status)
                if time.monotonic() > deadline:
                    response.close()
                    raise FetchFailure("timeout", "body took too long", response.status)
        except (u3.ReadTimeoutError, TimeoutError) as error:
            raise FetchFailure(
                "timeout", f"reading body: {describe(error)}", response.status
            ) from None
        except u3.ProtocolError as error:
            raise FetchFailure(
                "truncated", f"body cut short: {describe(error)}", response.status
            ) from None
        except u3.DecodeError as error:
            raise FetchFailure("content_encoding", describe(error), response.status) from None
        except (u3.HTTPError, OSError) as error:
            raise FetchFailure("connection_error", describe(error), response.status) from None
        return b"".join(chunks)

    def _pool(self, scheme: str, host: str, port: int, address: str):
        key = (scheme, host, port, address)
        pool = self._pools.get(key)
        if pool is None:
            size = self.config.per_host_concurrency
            if scheme == "https":
                cert = "CERT_REQUIRED" if self.config.verify_tls else "CERT_NONE"
                pool = _PinnedHTTPSPool(host, port, maxsize=size, pinned_ip=address, cert_reqs=cert)
            else:
                pool = _PinnedHTTPPool(host, port, maxsize=size, pinned_ip=address)
            self._pools[key] = pool
        return pool

    def _fetch_robots(
        self, url: str, gates: HostGates, unit_of: UnitOf
    ) -> tuple[int | None, bytes | None]:
        """robots.txt through the same guard, gates and caps (robots checks switched off):
        a policy file is a request to the host like any other."""
        current = url
        try:
            for _ in range(5):  # RFC 9309: follow at least five redirects
                scheme, host, port, target = _split(current)
                address = self._checked_address(host)
                with _gated(gates, unit_of(current) or host):
                    answer = self._request(scheme, host, port, address, target)
                if answer.location is None:
                    return answer.http_status, answer.body
                current = urllib.parse.urljoin(current, answer.location)
        except FetchFailure as failure:
            if failure.status in ("x_robots_tag", TDM_RESERVATION):  # on the file itself
                return 200, b""
            return failure.http_status, None
        return None, None


@contextmanager
def _gated(gates: HostGates, key: str) -> Iterator[None]:
    """The host's slot, or the named deferral when its time budget in this list is spent."""
    try:
        with gates.slot(key):
            yield
    except BudgetSpent as spent:
        raise FetchFailure(DEFERRED_HOST_TIME, f"{key}: {spent}") from None


class _Schedule:
    """The URLs taken from the input but not yet handed to a thread, queued by host."""

    def __init__(self, source: Iterator[tuple[int, str]], window: int, politeness: Politeness):
        self.source = source
        self.window = window
        self.politeness = politeness
        self.pulled = 0
        self.exhausted = False
        self.waiting: dict[str | None, deque[tuple[int, str]]] = {}
        self.active: Counter = Counter()

    def pull(self, next_index: int) -> None:
        """Takes URLs from the input until ``window`` are ahead of the next one to yield."""
        while not self.exhausted and self.pulled - next_index < self.window:
            item = next(self.source, None)
            if item is None:
                self.exhausted = True
                break
            self.waiting.setdefault(self.politeness.unit_of(item[1]), deque()).append(item)
            self.pulled += 1

    def ready(self, capacity: int) -> Iterator[tuple[int, str, str | None]]:
        """Up to ``capacity`` URLs to start now: round-robin over hosts below their cap."""
        while capacity > 0:
            started = 0
            for key in list(self.waiting):
                if capacity == 0:
                    break
                cap = self.politeness.gates.concurrency_of(key)
                if key is not None and self.active[key] >= cap:
                    continue
                queue = self.waiting[key]
                index, url = queue.popleft()
                if not queue:
                    del self.waiting[key]
                self.active[key] += 1
                capacity -= 1
                started += 1
                yield index, url, key
            if not started:
                return

    def finished(self, key: str | None) -> None:
        self.active[key] -= 1


def _split(url: str) -> tuple[str, str, int, str]:
    """scheme, host, port and request target of an http(s) URL, or FetchFailure."""
    try:
        parts = urllib.parse.urlsplit(url.strip())
        host, port = parts.hostname, parts.port
    except ValueError as error:
        raise FetchFailure("invalid_url", f"{url!r}: {error}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise FetchFailure("unsupported_scheme", f"{scheme or 'no'} scheme in {url[:200]!r}")
    if not host:
        raise FetchFailure("invalid_url", f"no host in {url[:200]!r}")
    if any(ord(character) <= 32 for character in host):
        raise FetchFailure("invalid_url", f"bad host in {url[:200]!r}")
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return scheme, host, port or (443 if scheme == "https" else 80), target


def _drain(response) -> None:
    """Reads a small unwanted body so the connection can be reused; closes a large one."""
    try:
        length = response.headers.get("content-length", "")
        if length.isdigit() and int(length) <= _DRAIN_BYTES:
            response.drain_conn()
        else:
            response.close()
    except (u3.HTTPError, OSError):
        response.close()
