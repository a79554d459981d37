"""The per-host gate's schedule: connections, the tick grid that split hosts share, pauses,
and the time budget, on a fake clock (nothing waits)."""

import threading

import pytest

from pipeline.fetch.hostgate import BudgetSpent, HostGates, Share, next_tick
from tools.webserver import most_in_window


class FakeClock:
    """time.time and time.sleep that only move when someone sleeps."""

    def __init__(self, now: float = 1_000_000.0):
        self.now = now
        self.lock = threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.now += max(0.0, seconds)


def starts(gates: HostGates, clock: FakeClock, host: str, count: int) -> list[float]:
    """When ``count`` requests, one after another, get their slot."""
    times = []
    for _ in range(count):
        with gates.slot(host):
            times.append(clock())
    return times


def test_a_whole_host_starts_one_request_per_tick_of_its_rate():
    clock = FakeClock()
    gates = HostGates(concurrency=2, rate=5, clock=clock, sleep=clock.sleep)
    times = starts(gates, clock, "h", 11)
    gaps = [round(b - a, 6) for a, b in zip(times, times[1:], strict=False)]
    assert gaps == [0.2] * 10
    assert most_in_window(times) == 5


def test_the_parts_of_a_split_host_take_alternate_ticks_and_never_start_together():
    clock = FakeClock()
    part = [
        HostGates(2, 5, {"h": Share((i,), 2)}, clock=clock, sleep=clock.sleep) for i in range(2)
    ]
    first = starts(part[0], clock, "h", 6)
    clock.now = 1_000_000.0  # the other part runs at the same time, on another worker
    second = starts(part[1], clock, "h", 6)
    assert not set(first) & set(second)
    assert all(round(b - a, 6) == 0.4 for a, b in zip(first, first[1:], strict=False))
    assert most_in_window(first + second) <= 5


def test_a_part_gets_its_share_of_the_connections():
    gates = HostGates(4, 0, {"split": Share((1,), 2), "twice": Share((0, 1), 4)})
    assert gates.concurrency_of("whole") == 4
    assert gates.concurrency_of("split") == 2
    assert gates.concurrency_of("twice") == 2
    assert HostGates(1, 0, {"h": Share((0,), 1)}).concurrency_of("h") == 1


@pytest.mark.parametrize(
    "earliest, share, last, expected",
    [
        (10.0, Share((0,), 1), None, 50),  # 10 s at 5/s: tick 50
        (10.01, Share((0,), 1), None, 51),  # never before earliest
        (10.0, Share((1,), 2), None, 51),  # part 1 of 2: odd ticks only
        (10.0, Share((0,), 2), 50, 52),  # after its own last tick
        (10.0, Share((0, 2), 3), 50, 51),  # parts 0 and 2 of 3: ticks 51 (2) and 53 (0)
    ],
)
def test_next_tick(earliest, share, last, expected):
    assert next_tick(earliest, 0.2, share, last) == expected


def test_a_retry_after_pause_holds_the_host_back():
    clock = FakeClock()
    gates = HostGates(2, 5, clock=clock, sleep=clock.sleep)
    starts(gates, clock, "h", 1)
    before = clock()
    gates.pause("h", 3.0)
    assert starts(gates, clock, "h", 1)[0] >= before + 3.0


def test_a_host_past_its_time_budget_gets_no_more_slots():
    clock = FakeClock()
    gates = HostGates(1, 5, budget_seconds=1.0, clock=clock, sleep=clock.sleep)
    assert len(starts(gates, clock, "h", 5)) == 5  # 0.0 .. 0.8 s
    starts(gates, clock, "h", 1)  # 1.0 s after the first: reserved before the check
    with pytest.raises(BudgetSpent):
        starts(gates, clock, "h", 1)
    assert len(starts(gates, clock, "other", 2)) == 2  # other hosts have their own budget


def test_without_a_rate_only_the_connections_are_capped():
    clock = FakeClock()
    gates = HostGates(2, 0, clock=clock, sleep=clock.sleep)
    assert set(starts(gates, clock, "h", 5)) == {clock()}
