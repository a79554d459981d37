"""One content decision for both ways a response reaches align-crawl: a WARC record and a fetched
page (``--page-urls``) with the same headers and bytes end the same way, with the same counts."""

import gzip

import pytest

from pipeline.crawl.cli import build_parser
from pipeline.crawl.harvest import HarvestOptions, from_warc_record
from pipeline.crawl.job import FetchPages, page_fetch_config
from pipeline.warc.reader import WarcRecord
from tests.pipeline.fetch.testserver import ScriptedServer, respond

PAGE = b'<html><body><img src="a.jpg" alt="a picture"></body></html>'
PROSE = b'Notes. Markup quoted in plain text: <img src="a.jpg" alt="a picture">'

CASES = {
    "html": ("text/html", {}, PAGE, None),
    "plain_text_page_sniffed": ("text/plain", {}, PAGE, None),
    "plain_text_prose": ("text/plain", {}, PROSE, "not_html"),
    "undeclared_page_sniffed": (None, {}, PAGE, None),
    "image": ("image/png", {}, b"\x89PNG\r\n", "not_html"),
    "gzip": ("text/html", {"Content-Encoding": "gzip"}, gzip.compress(PAGE), None),
    "identity_under_gzip": ("text/html", {"Content-Encoding": "gzip"}, PAGE, None),
    "chunked": ("text/html", {"Transfer-Encoding": "chunked"}, PAGE, None),
    "bad_gzip": ("text/html", {"Content-Encoding": "gzip"}, b"\x00garbage", "bad_content_encoding"),
}
PAYLOAD_COUNTS = {"gzip": "payload/gzip", "identity_under_gzip": "payload/undeclared_identity_body"}


@pytest.fixture(scope="module")
def server():
    server = ScriptedServer(hosts=("127.0.0.1",))
    yield server
    server.close()


@pytest.fixture(scope="module")
def fetch_pages():
    flags = ["--page-urls", "pages.txt", "--output", "out", "--allow-private-networks"]
    args = build_parser().parse_args([*flags, "--connect-timeout", "2", "--read-timeout", "2"])
    harvest = FetchPages(HarvestOptions(), page_fetch_config(args))  # the job's own settings
    harvest.setup()
    yield harvest
    harvest.teardown()


def chunked(body: bytes) -> bytes:
    return b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)


def through_warc(content_type, headers, body):
    if "Transfer-Encoding" in headers:
        body = chunked(body)
    lines = ["HTTP/1.1 200 OK"] + ([f"Content-Type: {content_type}"] if content_type else [])
    lines += [f"{name}: {value}" for name, value in headers.items()]
    block = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
    record = WarcRecord(0, {"warc-type": "response", "warc-target-uri": "http://s/p"}, block)
    return from_warc_record(record, "f.warc", HarvestOptions())


def send_chunked(body: bytes, content_type: str):
    def route(handler):
        handler.send_response(200)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        handler.wfile.write(chunked(body))

    return route


def through_fetch(server, fetch_pages, name, content_type, headers, body):
    if "Transfer-Encoding" in headers:
        server.routes[f"/{name}"] = send_chunked(body, content_type)
    else:
        route = respond(200, body, headers=headers, content_type=content_type or "")
        server.routes[f"/{name}"] = route
    return fetch_pages.outcome(fetch_pages.fetcher.fetch(server.url(f"/{name}")))


@pytest.mark.parametrize("path", ["warc", "page-urls"])
@pytest.mark.parametrize("name", list(CASES))
def test_a_response_ends_the_same_way_in_both_paths(name, path, server, fetch_pages):
    content_type, headers, body, reason = CASES[name]
    if path == "warc":
        outcome = through_warc(content_type, headers, body)
    else:
        outcome = through_fetch(server, fetch_pages, name, content_type, headers, body)
    assert outcome.reason == reason
    assert bool(outcome.pairs) == (reason is None)
    if name in PAYLOAD_COUNTS:
        assert outcome.counts[PAYLOAD_COUNTS[name]] == 1
    assert outcome.counts["payload/not_chunked"] == 0  # the HTTP client undid the chunking
