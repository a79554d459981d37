"""Politeness for the whole job: the per-host caps hold whatever the number of workers.

align-download runs on four loopback hosts of 40 images each with 1, 2 and 4 worker
processes (the DirectRunner's multi_processing mode), and the server counts what each host
saw. The bounds are upper bounds: a slow machine can only lower them.
"""

import io

import pyarrow.parquet as pq
import pytest
from PIL import Image

from pipeline.download.cli import run
from pipeline.records import PAIR_SCHEMA, make_uid
from pipeline.shards import rows_to_table
from tools.webserver import WebServer

HOSTS = ("127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4")
IMAGES_PER_HOST = 40
CONCURRENCY, RATE = 2, 5
# Request starts in any one-second window may exceed the rate by at most this: one for a
# window that closes on a tick, one for the network's jitter (docs/dataflow.md, "Politeness").
BURST = 2
WORKERS = (1, 2, 4)

pytestmark = pytest.mark.slow


def jpeg(seed: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (48, 40), (seed * 37 % 256, seed * 91 % 256, 120)).save(buffer, "JPEG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def web(tmp_path_factory):
    site = tmp_path_factory.mktemp("site")
    for number, host in enumerate(HOSTS):
        folder = site / host / "img"
        folder.mkdir(parents=True)
        (site / host / "robots.txt").write_text("User-agent: *\nDisallow: /private/\n")
        for index in range(IMAGES_PER_HOST):
            (folder / f"{index}.jpg").write_bytes(jpeg(number * 100 + index))
    server = WebServer(site, hosts=HOSTS, faults=False)
    yield server
    server.close()


@pytest.fixture(scope="module")
def pairs(web, tmp_path_factory):
    folder = tmp_path_factory.mktemp("pairs")
    urls = [web.url(h, f"img/{i}.jpg") for h in range(len(HOSTS)) for i in range(IMAGES_PER_HOST)]
    rows = [
        {
            "uid": make_uid(url, "a photo"),
            "url": url,
            "alt": "a photo",
            "page_url": "p",
            "source": "t",
        }
        for url in urls
    ]
    rows.sort(key=lambda row: row["uid"])
    for shard in range(2):
        table = rows_to_table(rows[shard::2], PAIR_SCHEMA)
        pq.write_table(table, folder / f"pairs-{shard:05d}-of-00002.parquet")
    return folder


@pytest.fixture(scope="module")
def runs(web, pairs, tmp_path_factory):
    """One download per worker count; each host is split over two fetch lists (16 rows a
    shard), the hardest case: two lists on different workers share one host's caps."""
    results = {}
    for workers in WORKERS:
        output = tmp_path_factory.mktemp(f"images-{workers}")
        web.meter.reset()
        stats = run(
            [
                *("--input", str(pairs), "--output", str(output), "--allow-private-networks"),
                *("--per-host-concurrency", str(CONCURRENCY), "--per-host-rate", str(RATE)),
                *("--rows-per-shard", "16", "--direct_running_mode", "multi_processing"),
                *("--direct_num_workers", str(workers)),
            ]
        )
        results[workers] = (output, stats, web.politeness())
    return results


@pytest.mark.parametrize("workers", WORKERS)
def test_no_host_ever_sees_more_than_its_caps(runs, workers):
    _, stats, seen = runs[workers]
    assert stats["kept"] == len(HOSTS) * IMAGES_PER_HOST and stats["balanced"]
    assert sorted(seen) == sorted(HOSTS)
    for host in HOSTS:
        assert seen[host]["requests"] <= CONCURRENCY, (host, seen[host])
        assert seen[host]["connections"] <= CONCURRENCY, (host, seen[host])
        assert seen[host]["starts_per_second"] <= RATE + BURST, (host, seen[host])


@pytest.mark.parametrize("workers", WORKERS)
def test_robots_txt_is_fetched_once_per_host_per_run_and_recorded(runs, workers):
    output, stats, seen = runs[workers]
    assert {host: seen[host]["robots_txt"] for host in HOSTS} == dict.fromkeys(HOSTS, 1)
    assert stats["counts"]["robots_fetched"] == len(HOSTS)
    records = pq.read_table(output / "policies").to_pylist()
    for file, outcome in (
        ("robots.txt", "rules"),
        ("ai.txt", "missing"),
        ("tdmrep.json", "missing"),
    ):
        applied = [row for row in records if row["file"] == file]
        assert sorted(row["host"] for row in applied) == sorted(HOSTS), file
        assert {row["outcome"] for row in applied} == {outcome}


def test_outputs_are_byte_identical_whatever_the_worker_count(runs):
    shards = {}
    for workers, (output, _, _) in runs.items():
        shards[workers] = {p.name: p.read_bytes() for p in output.glob("images-*.parquet")}
    assert len(shards[1]) > 1
    assert shards[1] == shards[2] == shards[4]


def uids(output) -> list[str]:
    shards = sorted(output.glob("images-*.parquet"))
    return [uid for shard in shards for uid in pq.read_table(shard).column("uid").to_pylist()]


def download(pairs, output, *flags) -> dict:
    return run(["--input", str(pairs), "--output", str(output), "--allow-private-networks", *flags])


def test_urls_over_a_hosts_budget_are_deferred_by_name_and_a_later_run_takes_exactly_them(
    web, pairs, tmp_path
):
    first = download(pairs, tmp_path / "first", "--max-urls-per-host", "15", "--per-host-rate", "0")
    total = len(HOSTS) * IMAGES_PER_HOST
    assert first["kept"] == 15 * len(HOSTS) and first["in"] == total and first["balanced"]
    assert first["deferred"] == {"host_url_budget": total - 15 * len(HOSTS)}
    later = download(tmp_path / "first" / "deferred", tmp_path / "later", "--per-host-rate", "0")
    assert later["kept"] == total - 15 * len(HOSTS) and "deferred" not in later
    fetched = [uid for run in ("first", "later") for uid in uids(tmp_path / run)]
    everything = pq.read_table(pairs, columns=["uid"]).column("uid").to_pylist()
    assert sorted(fetched) == sorted(everything)


def test_a_host_past_its_time_budget_defers_the_rest_by_name(web, pairs, tmp_path):
    stats = download(pairs, tmp_path / "out", "--per-host-rate", "5", "--max-seconds-per-host", "1")
    assert stats["balanced"] and stats["in"] == len(HOSTS) * IMAGES_PER_HOST
    assert 0 < stats["deferred"]["host_time_budget"] < len(HOSTS) * IMAGES_PER_HOST
    deferred = pq.read_table(tmp_path / "out" / "deferred")
    assert deferred.num_rows == stats["deferred"]["host_time_budget"]
