"""align-crawl honours every page-level reservation, in stored pages (WARC, WAT) and fetched
ones (--page-urls), and the user's --opt-out list: nothing reserved reaches the pairs, and each
drop is counted under its reason (pages in ``rejected``, pairs in ``pairs/withheld/``)."""

from __future__ import annotations

import json

import pytest

from pipeline.crawl.cli import run
from pipeline.crawl.harvest import HarvestOptions, from_wat_record
from pipeline.shards import read_table
from pipeline.stats import read_stats
from pipeline.warc.reader import WarcRecord
from tests.pipeline.crawl.warc_write import gzip_member, warc_record
from tests.pipeline.fetch.testserver import ScriptedServer, send

# path -> (response headers, <head> markup, the reason the page is dropped or None)
PAGES = {
    "/x-robots-tag.html": ([("X-Robots-Tag", "noai")], "", "x_robots_tag"),
    "/x-robots-lines.html": (
        [("X-Robots-Tag", "otherbot: nofollow"), ("X-Robots-Tag", "align-recipe: noimageai")],
        "",
        "x_robots_tag",
    ),
    "/meta-robots.html": ([], '<meta name="robots" content="noindex, nofollow">', "meta_robots"),
    "/meta-agent.html": ([], '<META NAME="align-recipe" CONTENT="noimageindex">', "meta_robots"),
    "/tdm-header.html": ([("tdm-reservation", "1")], "", "tdm_reservation"),
    "/tdm-meta.html": ([], '<meta name="tdm-reservation" content="1">', "tdm_reservation_meta"),
    "/tdm-zero.html": (
        [("tdm-reservation", "0"), ("tdm-policy", "https://e.example/p.json")],
        "",
        None,
    ),
    "/other-agent.html": ([], '<meta name="googlebot" content="noindex">', None),
    "/clean.html": ([], '<meta name="description" content="pictures">', None),
    "/listed-page.html": ([], "", "opt_out_page"),
}
OPT_OUT = "page:{page}\nurl:{url}\n# a comment\ndomain:owner.example\n"


def html(path: str, head: str) -> bytes:
    name = path.strip("/").removesuffix(".html")
    body = "".join(
        f'<img src="http://img.example/{name}-{k}.jpg" alt="{name} {k}">' for k in (1, 2)
    )
    body += '<img src="http://cdn.owner.example/x.jpg" alt="on a listed domain">' * (
        name == "clean"
    )
    return f"<html><head>{head}<title>t</title></head><body>{body}</body></html>".encode()


def response_block(headers: list[tuple[str, str]], body: bytes) -> bytes:
    lines = ["HTTP/1.1 200 OK", "Content-Type: text/html; charset=utf-8"]
    lines += [f"{name}: {value}" for name, value in headers]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def opt_out_file(tmp_path, base: str):
    path = tmp_path / "opt-out.txt"
    listed = OPT_OUT.format(page=f"{base}/listed-page.html", url="http://img.example/clean-1.jpg")
    path.write_text(listed)
    return str(path)


def expected_urls() -> set[str]:
    names = [path.strip("/").removesuffix(".html") for path, (*_, why) in PAGES.items() if not why]
    urls = {f"http://img.example/{name}-{k}.jpg" for name in names for k in (1, 2)}
    return urls - {"http://img.example/clean-1.jpg"}  # listed by url:


def crawled(output) -> tuple[set[str], dict]:
    urls = set(read_table(str(output / "pairs-*.parquet"), columns=["url"]).column(0).to_pylist())
    return urls, read_stats(str(output))


def dropped_pages() -> dict[str, int]:
    reasons = [why for *_, why in PAGES.values() if why]
    return {reason: reasons.count(reason) for reason in reasons}


def test_a_warc_crawl_keeps_no_pair_of_a_reserved_page(tmp_path):
    base = "http://site.example"
    records = [
        warc_record(response_block(headers, html(path, head)), target_uri=base + path)
        for path, (headers, head, _) in PAGES.items()
    ]
    (tmp_path / "in.warc.gz").write_bytes(b"".join(gzip_member(r) for r in records))
    output = tmp_path / "out"
    argv = ["--input", str(tmp_path / "in.warc.gz"), "--output", str(output), "--shards", "1"]
    run(argv + ["--opt-out", opt_out_file(tmp_path, base)])
    urls, stats = crawled(output)
    assert urls == expected_urls()
    assert stats["balanced"] and stats["rejected"] == dropped_pages()
    withheld = {k: v for k, v in stats["counts"].items() if k.startswith("pairs/withheld/")}
    expected = {f"pairs/withheld/{reason}": 2 * n for reason, n in dropped_pages().items()}
    expected.update({"pairs/withheld/opt_out_url": 1, "pairs/withheld/opt_out_domain": 1})
    assert withheld == expected
    assert stats["counts"]["img/withheld"] == sum(expected.values())


@pytest.fixture(scope="module")
def site():
    server = ScriptedServer(("127.0.0.1",))
    for path, (headers, head, _) in PAGES.items():
        body = html(path, head)
        server.routes[path] = lambda handler, h=headers, b=body: send(
            handler, 200, b, headers=h, content_type="text/html; charset=utf-8"
        )
    yield server
    server.close()


def test_a_page_list_crawl_keeps_no_pair_of_a_reserved_page(site, tmp_path):
    (tmp_path / "pages.txt").write_text("\n".join(site.url(path) for path in PAGES) + "\n")
    output = tmp_path / "out"
    argv = ["--page-urls", str(tmp_path / "pages.txt"), "--allow-private-networks"]
    argv += ["--output", str(output), "--shards", "1"]
    run(argv + ["--opt-out", opt_out_file(tmp_path, site.url("").rstrip("/"))])
    urls, stats = crawled(output)
    assert urls == expected_urls()
    assert stats["balanced"] and stats["rejected"] == dropped_pages()
    # The fetcher refuses a page by its X-Robots-Tag before reading it: its pairs are unknown.
    assert stats["counts"]["pages/withheld_unread"] == 2
    withheld = {k: v for k, v in stats["counts"].items() if k.startswith("pairs/withheld/")}
    assert withheld["pairs/withheld/meta_robots"] == 4
    assert withheld["pairs/withheld/tdm_reservation"] == 2
    assert withheld["pairs/withheld/tdm_reservation_meta"] == 2


def wat_record(headers: dict, metas: list[dict]) -> WarcRecord:
    envelope = {
        "WARC-Header-Metadata": {"WARC-Type": "response", "WARC-Target-URI": "http://s.example/"},
        "Payload-Metadata": {
            "HTTP-Response-Metadata": {
                "Response-Message": {"Status": "200"},
                "Headers": headers,
                "HTML-Metadata": {
                    "Head": {"Title": "t", "Metas": metas},
                    "Links": [{"path": "IMG@/src", "url": "/a.jpg", "alt": "an a"}],
                },
            }
        },
    }
    block = json.dumps({"Envelope": envelope}).encode()
    return WarcRecord(0, {"warc-type": "metadata"}, block)


@pytest.mark.parametrize(
    ("headers", "metas", "reason"),
    [
        ({"X-Robots-Tag": "noai"}, [], "x_robots_tag"),
        ({"X-Robots-Tag": ["googlebot: noindex", "noimageai"]}, [], "x_robots_tag"),
        ({}, [{"name": "robots", "content": "noai"}], "meta_robots"),
        ({"TDM-Reservation": "1"}, [], "tdm_reservation"),
        ({}, [{"name": "tdm-reservation", "content": "1"}], "tdm_reservation_meta"),
        ({"tdm-reservation": "0"}, [{"property": "og:title", "content": "x"}], None),
    ],
)
def test_a_wat_record_is_judged_by_its_stored_headers_and_metas(headers, metas, reason):
    outcome = from_wat_record(wat_record(headers, metas), "f.wat", HarvestOptions())
    assert outcome.reason == reason
    assert len(outcome.pairs) == (0 if reason else 1)
    assert outcome.counts.get(f"pairs/withheld/{reason}", 0) == (1 if reason else 0)
