"""The fetcher against a scripted local server: statuses, retries, caps, redirects, robots."""

import threading
import time

import pytest

from pipeline.fetch.fetcher import USER_AGENT, FetchConfig, Fetcher, retry_after_seconds
from tests.pipeline.fetch.testserver import ScriptedServer, hang, redirect, respond, send, truncated


@pytest.fixture(scope="module")
def server():
    server = ScriptedServer()
    yield server
    server.close()


def quick_config(**overrides) -> FetchConfig:
    values = dict(
        allow_private_networks=True,
        connect_timeout=2.0,
        read_timeout=0.5,
        total_timeout=5.0,
        backoff=0.01,
        per_host_rate=0.0,
        threads=8,
    )
    values.update(overrides)
    return FetchConfig(**values)


@pytest.fixture(scope="module")
def fetcher():
    with Fetcher(quick_config()) as fetcher:
        yield fetcher


def test_ok_returns_body_status_and_lowercase_headers(server, fetcher):
    server.routes["/ok"] = respond(200, b"hello", headers={"X-Thing": "1"})
    result = fetcher.fetch(server.url("/ok"))
    assert (result.status, result.http_status, result.body) == ("ok", 200, b"hello")
    assert result.headers["x-thing"] == "1" and result.error is None
    assert result.final_url == result.url == server.url("/ok")


def test_requests_identify_the_project(server, fetcher):
    server.routes["/ua"] = respond(200, b"x")
    fetcher.fetch(server.url("/ua"))
    assert server.hits("/ua")[0]["user_agent"] == USER_AGENT
    assert "align-recipe" in USER_AGENT and "+http" in USER_AGENT


def test_not_found_is_http_404_and_not_retried(server, fetcher):
    result = fetcher.fetch(server.url("/missing"))
    assert (result.status, result.http_status, result.body) == ("http_404", 404, None)
    assert len(server.hits("/missing")) == 1


def test_server_error_is_retried_then_named_http_5xx(server, fetcher):
    server.routes["/boom"] = respond(500, b"oops")
    result = fetcher.fetch(server.url("/boom"))
    assert (result.status, result.http_status) == ("http_5xx", 500)
    assert len(server.hits("/boom")) == fetcher.config.retries + 1


def test_503_with_retry_after_is_waited_out_then_succeeds(server, fetcher):
    answers = iter([respond(503, headers={"Retry-After": "0"}), respond(200, b"back")])
    server.routes["/busy"] = lambda handler: next(answers)(handler)
    result = fetcher.fetch(server.url("/busy"))
    assert (result.status, result.body) == ("ok", b"back")
    assert len(server.hits("/busy")) == 2


def test_429_with_a_long_retry_after_gives_up_at_once(server, fetcher):
    server.routes["/slow-down"] = respond(429, headers={"Retry-After": "3600"})
    result = fetcher.fetch(server.url("/slow-down"))
    assert (result.status, result.http_status) == ("http_429", 429)
    assert len(server.hits("/slow-down")) == 1


def test_retry_after_reads_seconds_and_http_dates():
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert retry_after_seconds("soon") is None and retry_after_seconds(None) is None


def test_redirect_is_followed_to_the_final_url(server, fetcher):
    server.routes["/moved"] = redirect("/ok-target", 301)
    server.routes["/ok-target"] = respond(200, b"here")
    result = fetcher.fetch(server.url("/moved"))
    assert (result.status, result.body, result.final_url) == (
        "ok",
        b"here",
        server.url("/ok-target"),
    )


def test_redirect_to_another_host_is_followed(server, fetcher):
    server.routes["/elsewhere"] = redirect(server.url("/other-host", "127.0.0.2"))
    server.routes["/other-host"] = respond(200, b"there")
    result = fetcher.fetch(server.url("/elsewhere"))
    assert (result.status, result.body) == ("ok", b"there")
    assert server.hits("/other-host", "127.0.0.2")


def test_redirect_loop_is_too_many_redirects(server, fetcher):
    server.routes["/loop-a"] = redirect("/loop-b")
    server.routes["/loop-b"] = redirect("/loop-a")
    assert fetcher.fetch(server.url("/loop-a")).status == "too_many_redirects"


def test_long_redirect_chain_is_too_many_redirects(server, fetcher):
    for hop in range(10):
        server.routes[f"/chain/{hop}"] = redirect(f"/chain/{hop + 1}")
    result = fetcher.fetch(server.url("/chain/0"))
    assert result.status == "too_many_redirects"
    assert len([r for r in server.requests if r["path"].startswith("/chain/")]) == 6


def test_redirect_without_location_is_bad_redirect(server, fetcher):
    server.routes["/nowhere"] = respond(302)
    assert fetcher.fetch(server.url("/nowhere")).status == "bad_redirect"


def test_unanswered_request_times_out(server, fetcher):
    server.routes["/hang"] = hang(3.0)
    result = fetcher.fetch(server.url("/hang"))
    assert result.status == "timeout" and result.body is None


def test_body_over_the_byte_cap_is_too_large(server):
    server.routes["/big"] = respond(200, b"x" * 5000)
    with Fetcher(quick_config(max_bytes=4096)) as small:
        assert small.fetch(server.url("/big")).status == "too_large"


def test_body_without_length_over_the_cap_is_too_large(server):
    def unsized(handler):
        handler.send_response(200)
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.wfile.write(b"y" * 200_000)
        handler.close_connection = True

    server.routes["/unsized"] = unsized
    with Fetcher(quick_config(max_bytes=100_000)) as small:
        assert small.fetch(server.url("/unsized")).status == "too_large"


def test_body_shorter_than_its_length_is_truncated(server, fetcher):
    server.routes["/cut"] = truncated(b"z" * 100, claimed=1000)
    assert fetcher.fetch(server.url("/cut")).status == "truncated"


@pytest.mark.parametrize(
    "url, status",
    [
        ("ftp://example.com/a.jpg", "unsupported_scheme"),
        ("file:///etc/passwd", "unsupported_scheme"),
        ("data:image/png;base64,AAAA", "unsupported_scheme"),
        ("/relative.jpg", "unsupported_scheme"),
        ("http:///nohost.jpg", "invalid_url"),
        ("http://[::1/x.jpg", "invalid_url"),
        ("http://1.2.3.999/x.jpg", "invalid_url"),
        ("http://" + "a" * 300 + ".example/x.jpg", "invalid_url"),  # IDNA label too long
        ("http://exa mple.example/x.jpg", "invalid_url"),
    ],
)
def test_urls_that_cannot_be_fetched_get_a_named_status(fetcher, url, status):
    assert fetcher.fetch(url).status == status


@pytest.mark.parametrize(
    "header, status",
    [
        (["noai"], "x_robots_tag"),
        (["noimageai"], "x_robots_tag"),
        (["noindex, nofollow"], "x_robots_tag"),
        (["align-recipe: noimageindex"], "x_robots_tag"),
        (["otherbot: noai"], "ok"),
        (["otherbot: noindex", "nofollow"], "ok"),
        (["max-image-preview: large"], "ok"),
    ],
)
def test_x_robots_tag_opt_outs_for_our_agent_are_honoured(server, fetcher, header, status):
    path = f"/xrobots/{abs(hash(tuple(header)))}"
    server.routes[path] = respond(200, b"img", headers=[("X-Robots-Tag", v) for v in header])
    result = fetcher.fetch(server.url(path))
    assert result.status == status
    assert (result.body is None) == (status != "ok")


def test_robots_txt_is_fetched_once_per_host_and_obeyed():
    server = ScriptedServer(hosts=("127.0.0.1",))
    try:
        rules = (
            b"User-agent: *\nDisallow: /private/\n\nUser-agent: align-recipe\nDisallow: /no-ai/\n"
        )
        server.routes["/robots.txt"] = respond(200, rules, content_type="text/plain")
        server.routes["/private/a.jpg"] = respond(200, b"a")
        server.routes["/no-ai/b.jpg"] = respond(200, b"b")
        server.routes["/public/c.jpg"] = respond(200, b"c")
        with Fetcher(quick_config()) as fetcher:
            urls = [server.url(p) for p in ("/private/a.jpg", "/no-ai/b.jpg", "/public/c.jpg")]
            statuses = [result.status for result in fetcher.fetch_many(urls * 5)]
        assert statuses == ["ok", "robots_disallowed", "ok"] * 5  # our group replaces "*"
        assert len(server.hits("/robots.txt")) == 1
        assert not server.hits("/no-ai/b.jpg")
    finally:
        server.close()


@pytest.mark.parametrize(
    "robots_status, expected",
    [(404, "ok"), (500, "robots_unreachable"), (429, "robots_unreachable")],
)
def test_missing_robots_allows_and_failing_robots_disallows(robots_status, expected):
    server = ScriptedServer(hosts=("127.0.0.1",))
    try:
        server.routes["/robots.txt"] = respond(robots_status)
        server.routes["/img.jpg"] = respond(200, b"i")
        with Fetcher(quick_config()) as fetcher:
            assert fetcher.fetch(server.url("/img.jpg")).status == expected
    finally:
        server.close()


def test_a_host_that_is_down_is_robots_unreachable_not_disallowed():
    server = ScriptedServer(hosts=("127.0.0.1",))
    url = server.url("/a.jpg")
    server.close()  # nothing listens on its port any more
    with Fetcher(quick_config(retries=0)) as fetcher:
        result = fetcher.fetch(url)
    assert result.status == "robots_unreachable"
    assert result.error.startswith("robots.txt of 127.0.0.1 unreachable (no answer)")
    assert "disallows" not in result.error


def test_robots_can_be_switched_off(server):
    server.routes["/robots.txt"] = respond(200, b"User-agent: *\nDisallow: /\n")
    try:
        with Fetcher(quick_config(respect_robots=False)) as fetcher:
            server.routes["/anyway"] = respond(200, b"x")
            assert fetcher.fetch(server.url("/anyway")).status == "ok"
    finally:
        del server.routes["/robots.txt"]


def test_fetch_many_keeps_input_order(server, fetcher):
    for index in range(30):
        server.routes[f"/n/{index}"] = respond(200, str(index).encode())
    urls = [server.url(f"/n/{index}") for index in reversed(range(30))]
    bodies = [result.body for result in fetcher.fetch_many(urls)]
    assert bodies == [str(index).encode() for index in reversed(range(30))]


def test_map_applies_process_on_the_fetch_threads(server, fetcher):
    server.routes["/p"] = respond(200, b"abc")
    names = list(fetcher.map([server.url("/p")] * 3, lambda r: threading.current_thread().name))
    assert all(name.startswith("fetch") for name in names)


def test_per_host_concurrency_is_capped(server):
    active, peak, lock = [0], [0], threading.Lock()

    def slow(handler):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.05)
        with lock:
            active[0] -= 1
        send(handler, 200, b"s")

    server.routes["/capped"] = slow
    with Fetcher(quick_config(per_host_concurrency=2, threads=16)) as fetcher:
        results = fetcher.fetch_many([server.url("/capped")] * 24)
    assert all(result.status == "ok" for result in results)
    assert peak[0] == 2


def test_per_host_rate_spaces_request_starts(server):
    server.routes["/rated"] = respond(200, b"r")
    with Fetcher(quick_config(per_host_rate=10.0, per_host_concurrency=4)) as fetcher:
        fetcher.fetch_many([server.url("/rated")] * 5)
    times = sorted(hit["time"] for hit in server.hits("/rated"))
    assert times[-1] - times[0] >= 0.3  # 5 starts at 10/s span at least 0.4 s


def test_a_body_trickled_slower_than_the_total_timeout_times_out(server):
    def trickle(handler):
        handler.send_response(200)
        handler.send_header("Content-Length", "1000")
        handler.end_headers()
        for _ in range(100):
            handler.wfile.write(b"x" * 10)
            handler.wfile.flush()
            time.sleep(0.1)

    server.routes["/trickle"] = trickle
    with Fetcher(quick_config(read_timeout=0.5, total_timeout=0.6)) as fetcher:
        result = fetcher.fetch(server.url("/trickle"))
    assert (result.status, result.error) == ("timeout", "body took too long")


def test_retry_after_delays_the_retry_by_at_least_its_seconds(server, fetcher):
    answers = iter([respond(503, headers={"Retry-After": "1"}), respond(200, b"later")])
    server.routes["/wait-a-second"] = lambda handler: next(answers)(handler)
    assert fetcher.fetch(server.url("/wait-a-second")).status == "ok"
    first, second = (hit["time"] for hit in server.hits("/wait-a-second"))
    assert second - first >= 0.9


def test_a_tdm_reservation_header_refuses_the_response_where_the_job_honours_it(server):
    server.routes["/tdm.jpg"] = respond(200, b"x", headers={"tdm-reservation": "1"})
    server.routes["/tdm0.jpg"] = respond(200, b"x", headers={"tdm-reservation": "0"})
    with Fetcher(quick_config(respect_tdm_header=True)) as fetcher:
        assert fetcher.fetch(server.url("/tdm.jpg")).status == "tdm_reservation"
        assert fetcher.fetch(server.url("/tdm0.jpg")).status == "ok"
    with Fetcher(quick_config()) as fetcher:  # a page crawl reads the header with the page
        assert fetcher.fetch(server.url("/tdm.jpg")).status == "ok"
