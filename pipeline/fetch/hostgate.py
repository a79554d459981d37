"""Per-host politeness: a cap on concurrent requests and on request rate, and host-wide pauses.

Each worker keeps one gate per host. A request takes a slot (at most ``concurrency`` at once)
and a start time at least ``1 / rate`` after the previous one; a ``429``/``503`` with
``Retry-After`` pauses the whole host, not just the one request that saw it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager


class _Host:
    def __init__(self, concurrency: int):
        self.slots = threading.Semaphore(concurrency)
        self.next_start = 0.0
        self.active = 0


class HostGates:
    """Thread-safe gates for many hosts; idle gates are forgotten beyond ``max_hosts``."""

    def __init__(self, concurrency: int = 4, rate: float = 0.0, max_hosts: int = 10_000):
        if concurrency < 1:
            raise ValueError(f"per-host concurrency must be at least 1, got {concurrency}")
        self.concurrency = concurrency
        self.interval = 1.0 / rate if rate > 0 else 0.0
        self.max_hosts = max_hosts
        self._hosts: dict[str, _Host] = {}
        self._lock = threading.Lock()

    @contextmanager
    def slot(self, host: str) -> Iterator[None]:
        """Holds one of host's concurrent slots, started no sooner than its rate allows."""
        gate = self._gate(host)
        gate.slots.acquire()
        try:
            with self._lock:
                start = max(time.monotonic(), gate.next_start)
                gate.next_start = start + self.interval
            delay = start - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            yield
        finally:
            gate.slots.release()
            with self._lock:
                gate.active -= 1

    def pause(self, host: str, seconds: float) -> None:
        """No new request to host for ``seconds`` (a server asked us to back off)."""
        with self._lock:
            gate = self._hosts.get(host)
            if gate is not None:
                gate.next_start = max(gate.next_start, time.monotonic() + seconds)

    def _gate(self, host: str) -> _Host:
        with self._lock:
            gate = self._hosts.get(host)
            if gate is None:
                if len(self._hosts) >= self.max_hosts:
                    self._forget_idle()
                gate = self._hosts[host] = _Host(self.concurrency)
            gate.active += 1
            return gate

    def _forget_idle(self) -> None:
        now = time.monotonic()
        for host in [h for h, g in self._hosts.items() if not g.active and g.next_start < now]:
            del self._hosts[host]
