"""The live lists' pairs in scratch files by host: planned from counts, read back when a list
runs, dealt exactly as the planner would deal the host's rows."""

import pyarrow as pa

from pipeline.download import host_spill
from pipeline.download.plan import plan_host, split_host


def shard(hosts: dict[str, int], start: int = 0) -> pa.Table:
    rows = [
        {"uid": f"{(i * 7919) % 1000:016x}-{host}", "url": f"http://{host}/{i}.jpg"}
        for host, count in hosts.items()
        for i in range(start, start + count)
    ]
    return pa.Table.from_pylist(rows)


def test_spilling_counts_each_hosts_pairs(tmp_path):
    _, counts = host_spill.spill(shard({"a.test": 3, "b.test": 5}), "host", 4, str(tmp_path))
    assert counts == {"a.test": 3, "b.test": 5}


def test_a_list_reads_back_the_parts_the_planner_deals_from_the_hosts_rows(tmp_path):
    lists, max_urls, shards = 3, 25, [shard({"a.test": 20, "b.test": 2}, 0)]
    shards.append(shard({"a.test": 20}, 20))
    files = [host_spill.spill(table, "host", lists, str(tmp_path))[0] for table in shards]
    every = [row for table in shards for row in table.to_pylist() if "a.test" in row["url"]]
    expected = split_host("a.test", every, max_urls, concurrency=3, rows_per_shard=10)
    planned = plan_host("a.test", len(every), max_urls, concurrency=3, rows_per_shard=10)
    assert [part.size for part in planned] == [len(part.rows) for part in expected]
    host_spill.fill(planned, files, lists, max_urls)
    assert [part.rows for part in planned] == [part.rows for part in expected]
    assert [part.deferred for part in planned] == [part.deferred for part in expected]


def test_a_host_none_of_the_files_holds_gets_no_rows(tmp_path):
    files = [host_spill.spill(shard({"a.test": 2}), "host", 2, str(tmp_path))[0]]
    parts = plan_host("z.test", 0, 0, concurrency=1, rows_per_shard=10)
    host_spill.fill(parts, files, 2, 0)
    assert parts[0].rows == [] and parts[0].deferred == []
