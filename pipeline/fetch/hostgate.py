"""Per-host politeness: at most ``concurrency`` requests at once and ``rate`` starts a second.

A gate is local to one fetch list (pipeline/download/plan.py puts each host in exactly one
list at a time), so its caps hold for the whole job, not per worker. A host too large for one
list is split into ``parts`` lists that share its budget: each gets ``concurrency // parts``
connections and every ``parts``-th tick of the host's rate, on a grid of wall-clock ticks
``n / rate`` that every machine of the job reads the same way (part ``i`` takes the ticks
with ``n % parts == i``; a list holding two parts of a host takes both their ticks). The
parts' starts never share a tick, so together they start at most ``rate`` requests in any
second, however their lists were spread over workers.

A ``429``/``503`` with ``Retry-After`` pauses the host in this list (every part of a split
host meets the server's answer itself on its next request). With ``budget_seconds``, a host
that has been fetched that long in this list starts no more requests: ``BudgetSpent``, and
its remaining URLs are deferred to a later run.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass(frozen=True)
class Share:
    """Parts ``indices`` of the ``parts`` a host's budget is split into (one list may hold
    several parts of a host when there are fewer lists than parts)."""

    indices: tuple[int, ...] = (0,)
    parts: int = 1

    @property
    def index(self) -> int:
        return self.indices[0]

    def joined(self, other: Share) -> Share:
        return Share(tuple(sorted({*self.indices, *other.indices})), self.parts)


WHOLE = Share()


class BudgetSpent(Exception):
    """The host's time budget in this list is used up; the URL waits for a later run."""


class _Host:
    def __init__(self, concurrency: int, share: Share):
        self.slots = threading.Semaphore(concurrency)
        self.share = share
        self.last_tick: int | None = None
        self.paused_until = 0.0
        self.first_start: float | None = None
        self.active = 0


class HostGates:
    """Thread-safe gates for the hosts of one fetch list (idle ones forgotten beyond
    ``max_hosts``). ``clock`` and ``sleep`` are wall-clock time.time and time.sleep, and
    replaceable so the schedule can be tested without waiting."""

    def __init__(
        self,
        concurrency: int = 4,
        rate: float = 0.0,
        shares: Mapping[str, Share] | None = None,
        budget_seconds: float = 0.0,
        max_hosts: int = 10_000,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ):
        if concurrency < 1:
            raise ValueError(f"per-host concurrency must be at least 1, got {concurrency}")
        self.concurrency = concurrency
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.shares = dict(shares or {})
        self.budget_seconds = budget_seconds
        self.max_hosts = max_hosts
        self.clock, self.sleep = clock, sleep
        self._hosts: dict[str, _Host] = {}
        self._lock = threading.Lock()

    def share(self, host: str | None) -> Share:
        return self.shares.get(host, WHOLE) if host is not None else WHOLE

    def concurrency_of(self, host: str | None) -> int:
        """This list's connections to ``host``: its share of the host's concurrency."""
        share = self.share(host)
        return max(1, self.concurrency * len(share.indices) // share.parts)

    @contextmanager
    def slot(self, host: str) -> Iterator[None]:
        """Holds one of host's slots, started at its next free tick (or BudgetSpent)."""
        gate = self._gate(host)
        gate.slots.acquire()
        try:
            start = self._reserve(gate)
            delay = start - self.clock()
            if delay > 0:
                self.sleep(delay)
            yield
        finally:
            gate.slots.release()
            with self._lock:
                gate.active -= 1

    def pause(self, host: str, seconds: float) -> None:
        """No new request to host for ``seconds`` (the server asked us to back off)."""
        with self._lock:
            gate = self._hosts.get(host)
            if gate is not None:
                gate.paused_until = max(gate.paused_until, self.clock() + seconds)

    def _reserve(self, gate: _Host) -> float:
        """The start time of the next request: the host's next tick of this share that is
        not before now or its pause, and after the share's previous tick."""
        with self._lock:
            now = self.clock()
            if gate.first_start is None:
                gate.first_start = now
            elif self.budget_seconds and now - gate.first_start >= self.budget_seconds:
                raise BudgetSpent(f"fetched for {self.budget_seconds:g}s in this run")
            earliest = max(now, gate.paused_until)
            if not self.interval:
                return earliest
            tick = next_tick(earliest, self.interval, gate.share, gate.last_tick)
            gate.last_tick = tick
            return tick * self.interval

    def _gate(self, host: str) -> _Host:
        with self._lock:
            gate = self._hosts.get(host)
            if gate is None:
                if len(self._hosts) >= self.max_hosts:
                    self._forget_idle()
                gate = _Host(self.concurrency_of(host), self.share(host))
                self._hosts[host] = gate
            gate.active += 1
            return gate

    def _forget_idle(self) -> None:
        now = self.clock()
        idle = [
            host
            for host, gate in self._hosts.items()
            if not gate.active and (gate.last_tick or 0) * self.interval < now
        ]
        for host in idle:
            del self._hosts[host]


def next_tick(earliest: float, interval: float, share: Share, last: int | None) -> int:
    """The first tick ``n`` with ``n * interval >= earliest``, ``n % parts`` one of the
    share's indices and ``n > last``: the grid that keeps a split host's parts from ever
    starting together."""
    tick = math.ceil(earliest / interval - 1e-9)
    if last is not None:
        tick = max(tick, last + 1)
    return min(tick + (index - tick) % share.parts for index in share.indices)
