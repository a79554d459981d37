"""Planning the fetch lists: a host's budget, its parts, which list owns them, their order."""

from pipeline.download.plan import (
    NO_HOST,
    Part,
    fetch_order,
    fingerprint,
    list_of,
    num_lists,
    parts_of,
    politeness_floor,
    shares_of,
    split_host,
)
from pipeline.fetch.hostgate import Share


def rows(count: int, host: str = "h") -> list[dict]:
    return [{"uid": f"{i:016x}", "url": f"http://{host}/{i}"} for i in reversed(range(count))]


def test_a_host_keeps_its_first_urls_by_uid_and_defers_the_rest():
    parts = split_host("h", rows(10), max_urls=4, concurrency=2, rows_per_shard=100)
    assert [row["uid"] for row in parts[0].rows] == [f"{i:016x}" for i in range(4)]
    assert [row["uid"] for row in parts[0].deferred] == [f"{i:016x}" for i in range(4, 10)]


def test_no_budget_keeps_every_url():
    parts = split_host("h", rows(10), max_urls=0, concurrency=2, rows_per_shard=100)
    assert len(parts) == 1 and len(parts[0].rows) == 10 and not parts[0].deferred


def test_a_large_host_is_dealt_into_at_most_its_concurrency_of_parts():
    parts = split_host("h", rows(100), max_urls=0, concurrency=4, rows_per_shard=30)
    assert [part.share for part in parts] == [Share((i,), 4) for i in range(4)]
    assert sorted(row["uid"] for part in parts for row in part.rows) == sorted(
        row["uid"] for row in rows(100)
    )
    assert parts_of(100, 2, 30) == 2 and parts_of(10, 4, 30) == 1


def test_urls_without_a_host_are_never_split():
    assert len(split_host(NO_HOST, rows(100), 0, 4, 10)) == 1


def test_a_hosts_parts_go_to_consecutive_lists_chosen_by_a_stable_hash():
    first = list_of("img.example.com", 0, 1000)
    assert [list_of("img.example.com", part, 1000) for part in range(3)] == [
        first,
        (first + 1) % 1000,
        (first + 2) % 1000,
    ]
    assert first == list_of("img.example.com", 0, 1000)  # no per-process hash seed
    assert len({list_of(f"host{i}", 0, 8) for i in range(100)}) == 8


def test_the_number_of_lists_depends_on_the_input_never_on_the_workers():
    assert num_lists(3, 100, 10_000) == 3
    assert num_lists(1, 25_000, 10_000) == 3
    assert num_lists(0, 0, 10_000) == 1


def test_hosts_take_turns_in_a_lists_fetch_order():
    a = Part("a", Share(), rows(3, "a"))
    b = Part("b", Share(), rows(1, "b"))
    order = [row["url"] for _, row in fetch_order([b, a])]
    assert order == ["http://a/2", "http://b/0", "http://a/1", "http://a/0"]


def test_two_parts_of_a_host_in_one_list_share_its_budget_together():
    parts = [Part("h", Share((0,), 4), []), Part("h", Share((2,), 4), []), Part("w", Share(), [])]
    assert shares_of(parts) == {"h": Share((0, 2), 4)}


def test_the_politeness_floor_is_the_slowest_hosts_urls_at_its_share_of_the_rate():
    whole = Part("a", Share(), rows(10))
    half = Part("b", Share((1,), 2), rows(10))
    assert politeness_floor([whole], 5) == 2.0
    assert politeness_floor([whole, half], 5) == 4.0  # 10 URLs at 2.5/s
    assert politeness_floor([whole], 0) == 0.0


def test_the_fingerprint_names_what_a_list_fetches_and_defers():
    base = Part("a", Share(), rows(3))
    same = Part("a", Share(), rows(3))
    deferring = Part("a", Share(), rows(3), deferred=rows(1, "z"))
    assert fingerprint([base]) == fingerprint([same])
    assert fingerprint([base]) != fingerprint([deferring])
    assert fingerprint([base]) != fingerprint([Part("a", Share(), rows(2))])
