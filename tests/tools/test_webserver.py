"""The synthetic web's server: each fault mode over a real socket, keep-alive, concurrency."""

from __future__ import annotations

import http.client
import json
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pyarrow.parquet as pq
import pytest

from tools.webserver import WebServer, serve

JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 40


def get(url: str, timeout: float = 5.0, method: str = "GET") -> http.client.HTTPResponse:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    connection.request(method, path)
    response = connection.getresponse()
    response.body = response.read() if method == "GET" else b""
    connection.close()
    return response


@pytest.fixture(scope="module")
def truth(synthetic_web):
    return pq.read_table(synthetic_web.ground_truth).to_pylist()


def url_with_fault(truth, fault: str) -> str:
    return next(r["url"] for r in truth if r["fault"] == fault and r["emitted_by_crawl"])


@pytest.fixture(scope="module")
def tiny_site(tmp_path_factory):
    """One folder per host, a few files, and short slow/hang times so tests stay quick."""
    root = tmp_path_factory.mktemp("tiny_site")
    for host in ("127.0.0.1", "127.0.0.2"):
        (root / host / "img").mkdir(parents=True)
        (root / host / "img" / "a.jpg").write_bytes(JPEG)
    routes = {
        "settings": {"slow_seconds": 0.8, "hang_seconds": 30, "redirect_hops": 2},
        "routes": {
            "127.0.0.1": {"/img/slow.jpg": {"fault": "slow"}, "/img/hang.jpg": {"fault": "hang"}}
        },
    }
    for name in ("slow.jpg", "hang.jpg"):
        (root / "127.0.0.1" / "img" / name).write_bytes(JPEG)
    (root / "routes.json").write_text(json.dumps(routes))
    return root


def test_a_clean_image_is_served_with_its_type_and_length(synthetic_web, truth):
    row = next(r for r in truth if r["fault"] == "none" and r["url"].endswith(".png"))
    response = get(row["url"])
    assert response.status == 200
    assert response.getheader("Content-Type") == "image/png"
    assert int(response.getheader("Content-Length")) == len(response.body)
    assert response.body.startswith(b"\x89PNG")


def test_a_missing_file_is_404(synthetic_web, truth):
    assert get(url_with_fault(truth, "http_404")).status == 404


def test_http_500_fault_answers_500(synthetic_web, truth):
    assert get(url_with_fault(truth, "http_500")).status == 500


def test_http_429_alternates_with_success_and_says_retry_after(synthetic_web, truth):
    url = url_with_fault(truth, "http_429")
    first, second = get(url), get(url)
    statuses = sorted([first.status, second.status])
    assert statuses == [200, 429]
    limited = first if first.status == 429 else second
    assert limited.getheader("Retry-After") == "1"


def test_truncated_body_is_shorter_than_its_content_length(synthetic_web, truth):
    url = url_with_fault(truth, "truncated")
    with pytest.raises(http.client.IncompleteRead):
        get(url)


def test_wrong_content_type_serves_image_bytes_as_text(synthetic_web, truth):
    response = get(url_with_fault(truth, "wrong_content_type"))
    assert response.status == 200
    assert response.getheader("Content-Type") == "text/plain"
    assert response.body[:3] == b"\xff\xd8\xff" or response.body[:4] in (
        b"\x89PNG",
        b"RIFF",
        b"GIF8",
    )


def test_redirect_chain_ends_at_the_image_on_the_same_host(synthetic_web, truth):
    url = url_with_fault(truth, "redirect")
    hops = 0
    response = get(url)
    while response.status in (301, 302):
        hops += 1
        location = response.getheader("Location")
        url = (
            location
            if location.startswith("http")
            else url.split("/", 3)[0] + "//" + (urlsplit(url).netloc + location)
        )
        response = get(url)
    assert hops == 2
    assert response.status == 200


def test_redirect_to_another_host_lands_on_that_host(synthetic_web, truth):
    url = url_with_fault(truth, "redirect_other_host")
    response = get(url)
    assert response.status == 302
    location = response.getheader("Location")
    assert urlsplit(location).hostname != urlsplit(url).hostname
    assert urlsplit(location).path == urlsplit(url).path
    assert get(location).status == 200


def test_redirect_loop_never_reaches_a_page(synthetic_web, truth):
    url = url_with_fault(truth, "redirect_loop")
    base = f"http://{urlsplit(url).netloc}"
    for _ in range(12):
        response = get(url)
        assert response.status == 302
        url = base + response.getheader("Location")


def test_x_robots_tag_header_is_sent(synthetic_web, truth):
    response = get(url_with_fault(truth, "x_robots_tag"))
    assert response.status == 200
    assert "noai" in response.getheader("X-Robots-Tag") or "noimageai" in response.getheader(
        "X-Robots-Tag"
    )


def test_a_reserved_page_is_served_with_its_headers_every_line_of_them(synthetic_web, truth):
    pages = {r["page_url"]: r["consent"] for r in truth if r["consent"] and not r["uid"]}
    seen = {}
    for page, signal in pages.items():
        response = get(page)
        assert response.status == 200
        seen.setdefault(signal, []).append(
            (response.headers.get_all("X-Robots-Tag") or [], response.getheader("tdm-reservation"))
        )
    assert ["otherbot: nofollow", "align-recipe: noimageai"] in [x for x, _ in seen["x_robots_tag"]]
    assert seen["tdm_reservation"] == [([], "1")]


def test_image_hosts_serve_their_policy_files_and_reserving_headers(synthetic_web, truth):
    consent = {r["consent"]: r["url"] for r in truth if r["consent"] and r["uid"]}
    assert get(consent["tdm_reservation"]).getheader("tdm-reservation") == "1"
    for signal, path in (("ai_txt", "/ai.txt"), ("tdmrep_json", "/.well-known/tdmrep.json")):
        response = get(f"http://{urlsplit(consent[signal]).netloc}{path}")
        assert response.status == 200 and response.body


def test_robots_txt_of_image_hosts_disallows_private(synthetic_web, truth):
    url = url_with_fault(truth, "robots_disallowed")
    parts = urlsplit(url)
    robots = get(f"http://{parts.netloc}/robots.txt").body.decode()
    assert parts.path.startswith("/private/")
    assert "User-agent: *\nDisallow: /private/" in robots


def test_not_an_image_is_served_as_html(synthetic_web, truth):
    response = get(url_with_fault(truth, "not_an_image"))
    assert response.getheader("Content-Type").startswith("text/html")
    assert b"<html" in response.body


def test_pages_are_served_with_their_declared_charset(synthetic_web):
    urls = synthetic_web.page_urls.read_text().split()
    types = {get(url).getheader("Content-Type") for url in urls}
    assert "text/html" in types
    assert any("charset=" in t for t in types)


def test_head_returns_headers_without_body(synthetic_web, truth):
    row = next(r for r in truth if r["fault"] == "none" and r["emitted_by_crawl"])
    response = get(row["url"], method="HEAD")
    assert response.status == 200 and int(response.getheader("Content-Length")) > 0


def test_path_traversal_is_refused(synthetic_web):
    response = get(synthetic_web.url(1, "/../../127.0.0.1/robots.txt"))
    assert response.status == 404


def test_keep_alive_serves_several_requests_on_one_connection(synthetic_web):
    connection = http.client.HTTPConnection("127.0.0.2", synthetic_web.port, timeout=5)
    sockets = []
    for _ in range(3):
        connection.request("GET", "/robots.txt")
        response = connection.getresponse()
        assert response.status == 200 and response.read()
        sockets.append(connection.sock)
    assert sockets[0] is not None and sockets[0] is sockets[1] is sockets[2]  # else a reconnect
    connection.close()


def test_hundreds_of_concurrent_connections_are_served(synthetic_web):
    """Opens 300 connections at once, then asks on all of them."""
    barrier = threading.Barrier(300)

    def one(_):
        connection = http.client.HTTPConnection("127.0.0.3", synthetic_web.port, timeout=30)
        connection.connect()
        barrier.wait(timeout=30)
        connection.request("GET", "/robots.txt")
        status = connection.getresponse().status
        connection.close()
        return status

    with ThreadPoolExecutor(300) as pool:
        statuses = list(pool.map(one, range(300)))
    assert statuses == [200] * 300


def test_slow_fault_delays_the_answer(tiny_site):
    with serve(tiny_site, hosts=("127.0.0.1", "127.0.0.2")) as server:
        with pytest.raises(TimeoutError):
            get(server.url(0, "/img/slow.jpg"), timeout=0.2)
        assert get(server.url(0, "/img/slow.jpg"), timeout=10).status == 200


def test_hang_outlasts_the_read_timeout(tiny_site):
    with serve(tiny_site, hosts=("127.0.0.1", "127.0.0.2")) as server:
        with pytest.raises(TimeoutError):
            get(server.url(0, "/img/hang.jpg"), timeout=0.5)


def test_close_ends_a_hung_connection(tiny_site):
    server = WebServer(tiny_site, hosts=("127.0.0.1", "127.0.0.2"))
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=20)
    sock.sendall(b"GET /img/hang.jpg HTTP/1.1\r\nHost: x\r\n\r\n")
    threading.Timer(0.3, server.close).start()
    assert sock.recv(1024) == b""  # EOF once the server closes, long before hang_seconds
    sock.close()


def test_hosts_serve_their_own_folders(tiny_site):
    (tiny_site / "127.0.0.2" / "only-here.txt").write_text("2")
    with serve(tiny_site, hosts=("127.0.0.1", "127.0.0.2")) as server:
        assert get(server.url(1, "/only-here.txt")).body == b"2"
        assert get(server.url(0, "/only-here.txt")).status == 404


def test_a_plain_directory_is_served_on_every_host_without_faults(tmp_path):
    (tmp_path / "photo.jpg").write_bytes(JPEG)
    (tmp_path / "routes.json").write_text(
        json.dumps({"routes": {"127.0.0.1": {"/photo.jpg": {"fault": "http_500"}}}})
    )
    with serve(tmp_path, hosts=("127.0.0.1", "127.0.0.2"), faults=False) as server:
        for host in (0, 1):
            response = get(server.url(host, "/photo.jpg"))
            assert response.status == 200 and response.body == JPEG
