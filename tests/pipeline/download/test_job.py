"""align-download end to end on a scripted server: every pair out once, resume, hostile files."""

import hashlib
import io
import json
import shutil
import threading
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from PIL import Image

from pipeline.download.cli import run
from pipeline.download.job import ensure_folder, input_paths
from pipeline.records import DOWNLOAD_SCHEMA, PAIR_SCHEMA, make_uid
from pipeline.shards import read_table, rows_to_table
from pipeline.stats import read_stats
from tests.pipeline.fetch.testserver import ScriptedServer, hang, redirect, respond
from tools.hostile import corpus

FAST = [
    "--rows-per-shard",  # each host split over several fetch lists, sharing its caps
    "8",
    "--allow-private-networks",
    "--read-timeout",
    "1",
    "--backoff",
    "0.01",
    "--per-host-rate",
    "0",
]


def jpeg(width: int, height: int, colour=(200, 30, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def write_pairs(folder: Path, urls: list[str], shards: int) -> list[dict]:
    """Pair shards as align-crawl writes them: uid-sorted, pairs-0000i-of-0000n.parquet."""
    rows = sorted(
        (
            {
                "uid": make_uid(url, f"alt {i}"),
                "url": url,
                "alt": f"alt {i}",
                "page_url": "p",
                "source": "test",
            }
            for i, url in enumerate(urls)
        ),
        key=lambda row: row["uid"],
    )
    folder.mkdir(parents=True, exist_ok=True)
    for index in range(shards):
        table = rows_to_table(rows[index::shards], PAIR_SCHEMA)
        pq.write_table(table, folder / f"pairs-{index:05d}-of-{shards:05d}.parquet")
    return rows


@pytest.fixture(scope="module")
def server():
    server = ScriptedServer(hosts=("127.0.0.1", "127.0.0.2"))
    server.routes["/robots.txt"] = respond(200, b"User-agent: *\nDisallow: /private/\n")
    server.routes["/big.jpg"] = respond(200, jpeg(800, 600), content_type="image/jpeg")
    server.routes["/small.jpg"] = respond(200, jpeg(100, 50), content_type="image/jpeg")
    server.routes["/mislabelled"] = respond(200, jpeg(400, 400), content_type="text/html")
    server.routes["/gone.jpg"] = respond(404)
    server.routes["/error.jpg"] = respond(503)
    server.routes["/moved.jpg"] = redirect("/big.jpg")
    server.routes["/private/x.jpg"] = respond(200, jpeg(400, 400))
    server.routes["/noai.jpg"] = respond(200, jpeg(400, 400), headers={"X-Robots-Tag": "noai"})
    server.routes["/hang.jpg"] = hang(3.0)
    server.routes["/page.jpg"] = respond(200, b"<html><body>hi</body></html>")
    yield server
    server.close()


EXPECTED = {
    "/big.jpg": "ok",
    "/small.jpg": "ok",
    "/mislabelled": "ok",
    "/gone.jpg": "http_404",
    "/error.jpg": "http_5xx",
    "/moved.jpg": "ok",
    "/private/x.jpg": "robots_disallowed",
    "/noai.jpg": "x_robots_tag",
    "/hang.jpg": "timeout",
    "/page.jpg": "not_an_image",
}


@pytest.fixture(scope="module")
def finished(server, tmp_path_factory):
    """One job over 3 shards of 40 pairs (10 paths x 2 hosts x 2 alts) plus blocked URLs."""
    root = tmp_path_factory.mktemp("download")
    urls = [server.url(path, host) for path in EXPECTED for host in ("127.0.0.1", "127.0.0.2")]
    urls = urls * 2 + ["ftp://example.com/a.jpg"]
    rows = write_pairs(root / "pairs", urls, shards=3)
    stats = run(["--input", str(root / "pairs"), "--output", str(root / "images"), *FAST])
    return root, rows, stats


def status_by_path(table) -> dict:
    return {row["url"]: row["status"] for row in table.to_pylist()}


def test_every_pair_comes_out_once_with_its_status(finished, server):
    root, rows, _ = finished
    table = read_table(str(root / "images" / "images-*.parquet"))
    assert table.schema == DOWNLOAD_SCHEMA
    assert sorted(table.column("uid").to_pylist()) == sorted(row["uid"] for row in rows)
    statuses = status_by_path(table)
    for path, status in EXPECTED.items():
        for host in ("127.0.0.1", "127.0.0.2"):
            assert statuses[server.url(path, host)] == status, path
    assert statuses["ftp://example.com/a.jpg"] == "unsupported_scheme"


def test_stats_balance_and_count_by_status(finished):
    root, rows, stats = finished
    assert stats == read_stats(str(root / "images"))
    assert stats["balanced"] and stats["in"] == len(rows)
    assert stats["kept"] == 4 * sum(1 for status in EXPECTED.values() if status == "ok")
    assert stats["rejected"]["http_404"] == 4 and stats["rejected"]["unsupported_scheme"] == 1
    shards = list((root / "images").glob("images-*.parquet"))
    assert stats["counts"]["shards_written"] == len(shards) >= 1


def test_stats_name_the_input_so_a_report_can_follow_the_curation_back(finished):
    root, _, stats = finished
    assert (stats["job"], stats["input"]) == ("align-download", str(root / "pairs"))


def test_ok_rows_hold_the_resized_image_and_its_metadata(finished, server):
    root, _, _ = finished
    table = read_table(str(root / "images" / "images-*.parquet")).to_pylist()
    big = next(row for row in table if row["url"] == server.url("/big.jpg"))
    assert (big["width"], big["height"], big["original_width"], big["original_height"]) == (
        461,
        346,
        800,
        600,
    )
    assert big["sha256"] == hashlib.sha256(jpeg(800, 600)).hexdigest()
    assert big["mime"] == "image/jpeg" and len(big["phash"]) == 16 and big["error"] is None
    assert Image.open(io.BytesIO(big["image"])).size == (461, 346)
    small = next(row for row in table if row["url"] == server.url("/small.jpg"))
    assert (small["width"], small["height"]) == (100, 50)  # no upscaling by default


def test_failed_rows_keep_the_pair_and_explain_without_an_image(finished, server):
    root, _, _ = finished
    table = read_table(str(root / "images" / "images-*.parquet")).to_pylist()
    gone = next(row for row in table if row["url"] == server.url("/gone.jpg"))
    assert gone["image"] is None and gone["error"] == "HTTP 404" and gone["alt"].startswith("alt")


def test_one_image_shard_per_fetch_list_and_a_policy_record_beside_it(finished, server):
    root, _, _ = finished
    names = sorted(path.name for path in (root / "images").iterdir())
    shards = [name for name in names if name.startswith("images-")]
    assert all(name.endswith("-of-00006.parquet") for name in shards)  # 41 pairs, 8 per list
    assert names == [*shards, "policies", "stats.json"]  # nothing deferred: no deferred/
    policies = read_table(str(root / "images" / "policies" / "*.parquet")).to_pylist()
    robots = {row["origin"]: row["outcome"] for row in policies if row["file"] == "robots.txt"}
    origins = {server.url("/", host).rstrip("/") for host in ("127.0.0.1", "127.0.0.2")}
    assert robots == dict.fromkeys(origins, "rules")  # once per host; ftp:// is never fetched


def test_rerun_skips_complete_shards_and_redoes_damaged_ones(finished, tmp_path):
    root, _, stats = finished
    before = {p.name: p.read_bytes() for p in (root / "images").glob("images-*.parquet")}
    names = sorted(before)
    copy = tmp_path / "images"
    shutil.copytree(root / "images", copy)
    (copy / names[0]).unlink()  # lost
    (copy / names[-1]).write_bytes(b"PAR1 half written")  # damaged
    (copy / (names[0] + ".tmp")).write_bytes(b"crashed mid-write")
    untouched = {name: (copy / name).stat().st_mtime_ns for name in names[1:-1]}
    rerun = run(["--input", str(root / "pairs"), "--output", str(copy), *FAST])
    after = {p.name: p.read_bytes() for p in copy.glob("images-*.parquet")}
    assert after == before  # byte-identical to the uninterrupted run
    assert len(names) > 2 and rerun["counts"]["shards_resumed"] == len(names) - 2
    assert rerun["counts"]["shards_written"] == 2
    assert {k: rerun[k] for k in ("in", "kept", "rejected")} == {
        k: stats[k] for k in ("in", "kept", "rejected")
    }
    assert {name: (copy / name).stat().st_mtime_ns for name in names[1:-1]} == untouched
    assert not (copy / (names[0] + ".tmp")).exists()


def test_hostile_images_served_over_http_end_as_their_expected_status(server, tmp_path):
    items = corpus()
    for item in items:
        server.routes[f"/hostile/{item.name}"] = respond(200, item.data, content_type="image/jpeg")
    write_pairs(tmp_path / "pairs", [server.url(f"/hostile/{i.name}") for i in items], shards=2)
    stats = run(["--input", str(tmp_path / "pairs"), "--output", str(tmp_path / "out"), *FAST])
    table = read_table(str(tmp_path / "out" / "images-*.parquet")).to_pylist()
    got = {row["url"].rsplit("/", 1)[1]: row["status"] for row in table}
    assert got == {item.name: item.expected for item in items}
    assert stats["balanced"] and stats["in"] == len(items)


def test_blocked_addresses_are_a_status_not_a_crash(server, tmp_path):
    write_pairs(tmp_path / "pairs", [server.url("/big.jpg"), "http://169.254.169.254/x"], 1)
    stats = run(["--input", str(tmp_path / "pairs"), "--output", str(tmp_path / "out")])
    assert stats["rejected"] == {"blocked_address": 2} and stats["balanced"]


def test_missing_input_is_a_one_line_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run(["--input", str(tmp_path / "nothing"), "--output", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    assert "align-download: error: no pair shards match" in capsys.readouterr().err


@pytest.mark.parametrize(
    "flag, value", [("--image-size", "0"), ("--jpeg-quality", "101"), ("--threads", "-1")]
)
def test_bad_flags_are_one_line_errors(tmp_path, capsys, flag, value):
    write_pairs(tmp_path / "pairs", ["http://example.com/a.jpg"], 1)
    with pytest.raises(SystemExit) as exit_info:
        run(["--input", str(tmp_path / "pairs"), "--output", str(tmp_path / "o"), flag, value])
    assert exit_info.value.code == 2
    assert flag in capsys.readouterr().err


def test_unknown_flag_is_rejected(tmp_path, capsys):
    with pytest.raises(SystemExit):
        run(["--input", "x", "--output", "y", "--no-such-flag"])
    assert "--no-such-flag" in capsys.readouterr().err


def test_input_glob_and_directory_name_the_same_shards(tmp_path):
    write_pairs(tmp_path / "pairs", ["http://example.com/a.jpg"], 2)
    by_dir = input_paths(str(tmp_path / "pairs"))
    assert by_dir == input_paths(str(tmp_path / "pairs" / "pairs-*.parquet")) and len(by_dir) == 2
    assert json.dumps(by_dir)


def test_a_pair_without_a_url_is_refused_at_the_door_before_any_work(tmp_path, capsys):
    row = {"uid": "0" * 16, "url": None, "alt": "x", "page_url": "p", "source": "s"}
    (tmp_path / "pairs").mkdir()
    pq.write_table(rows_to_table([row], PAIR_SCHEMA), tmp_path / "pairs" / "pairs-0-of-1.parquet")
    with pytest.raises(SystemExit) as exit_info:
        run(["--input", str(tmp_path / "pairs"), "--output", str(tmp_path / "out")])
    assert exit_info.value.code == 2
    error = capsys.readouterr().err
    assert "column 'url' is null in 1 of 1 rows" in error and len(error.splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_an_opt_out_list_leaves_pairs_and_images_out_counted_by_kind(server, tmp_path):
    urls = [
        server.url(path, host)
        for path in ("/big.jpg", "/small.jpg", "/moved.jpg")
        for host in ("127.0.0.1", "127.0.0.2")
    ]
    write_pairs(tmp_path / "pairs", urls, shards=1)
    listed = tmp_path / "opt-out.txt"
    listed.write_text(
        f"url:{server.url('/big.jpg', '127.0.0.1')}\n"
        "domain:127.0.0.2\n"
        f"sha256:{hashlib.sha256(jpeg(100, 50)).hexdigest()}\n"
    )
    stats = run(
        [
            "--input",
            str(tmp_path / "pairs"),
            "--output",
            str(tmp_path / "out"),
            "--opt-out",
            str(listed),
            *FAST,
        ]
    )
    assert stats["rejected"] == {"opt_out_url": 1, "opt_out_domain": 3, "opt_out_sha256": 1}
    assert stats["kept"] == 1 and stats["balanced"]
    table = read_table(str(tmp_path / "out" / "images-*.parquet")).to_pylist()
    assert [row["url"] for row in table] == [server.url("/moved.jpg", "127.0.0.1")]


def test_lists_finishing_together_can_all_make_their_folder(tmp_path):
    """Two lists publishing their first deferred/ file at once both find the folder made."""
    folder, errors = str(tmp_path / "deferred"), []
    start = threading.Barrier(8)

    def make():
        start.wait()
        try:
            ensure_folder(folder)
        except OSError as error:  # what two lists racing to make it used to raise
            errors.append(error)

    threads = [threading.Thread(target=make) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and (tmp_path / "deferred").is_dir()
