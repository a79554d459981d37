"""robots.txt (RFC 9309) rules for our agent token, its cache, and X-Robots-Tag parsing."""

import threading

import pytest

from pipeline.fetch.robots import RobotsCache, opts_out, parse_robots, x_robots_directives

TOKEN = "align-recipe"


@pytest.mark.parametrize(
    "robots, path, allowed",
    [
        ("User-agent: *\nDisallow: /", "/a.jpg", False),
        ("User-agent: *\nDisallow:", "/a.jpg", True),
        ("User-agent: *\nDisallow: /img/", "/img/a.jpg", False),
        ("User-agent: *\nDisallow: /img/", "/images/a.jpg", True),
        ("User-agent: *\nDisallow: /img/\nAllow: /img/public/", "/img/public/a.jpg", True),
        ("User-agent: *\nAllow: /img/\nDisallow: /img/", "/img/a.jpg", True),  # tie: allow
        ("User-agent: *\nDisallow: /*.jpg$", "/x/a.jpg", False),
        ("User-agent: *\nDisallow: /*.jpg$", "/x/a.jpg?size=2", True),
        ("User-agent: *\nDisallow: /*?", "/a.jpg?x=1", False),
        ("User-agent: *\nDisallow: /caf%C3%A9/", "/café/a.jpg", False),
        ("User-agent: otherbot\nDisallow: /", "/a.jpg", True),
        ("User-agent: ALIGN-Recipe\nDisallow: /", "/a.jpg", False),  # case-insensitive token
        ("User-agent: *\nDisallow: /\n\nUser-agent: align-recipe\nAllow: /", "/a.jpg", True),
        ("User-agent: a\nUser-agent: align-recipe\nDisallow: /x", "/x", False),  # shared group
        ("# comment\nUser-agent: * # all\nDisallow: /p # private", "/p/1", False),
        ("garbage without colons\n\n", "/a.jpg", True),
    ],
)
def test_robots_rules_for_our_token(robots, path, allowed):
    assert parse_robots(robots, TOKEN).allowed(path) is allowed


def test_groups_for_the_same_agent_are_merged():
    rules = parse_robots("User-agent: *\nDisallow: /a\n\nUser-agent: *\nDisallow: /b\n", TOKEN)
    assert not rules.allowed("/a") and not rules.allowed("/b") and rules.allowed("/c")


def fake_fetch(answers, calls):
    def fetch(url):
        calls.append(url)
        return answers[url]

    return fetch


@pytest.mark.parametrize(
    "status, body, allowed",
    [
        (200, b"User-agent: *\nDisallow: /", False),
        (404, None, True),
        (410, None, True),
        (429, None, False),
        (500, None, False),
        (503, None, False),
        (None, None, False),  # unreachable
    ],
)
def test_robots_status_decides_when_there_are_no_rules(status, body, allowed):
    cache = RobotsCache(fake_fetch({"http://h.example/robots.txt": (status, body)}, []), TOKEN)
    assert cache.allowed("http://h.example/a.jpg") is allowed


@pytest.mark.parametrize(
    "status, body, refusal",
    [
        (200, b"User-agent: *\nDisallow: /", "robots_disallowed"),
        (503, None, "robots_unreachable"),
        (429, None, "robots_unreachable"),
        (None, None, "robots_unreachable"),
    ],
)
def test_a_refusal_says_whether_the_site_said_no_or_could_not_be_asked(status, body, refusal):
    cache = RobotsCache(fake_fetch({"http://h.example/robots.txt": (status, body)}, []), TOKEN)
    assert cache.refusal("http://h.example/a.jpg")[0] == refusal


def test_robots_are_fetched_once_per_origin_even_under_concurrency():
    calls = []
    answers = {
        "http://a.example/robots.txt": (200, b"User-agent: *\nDisallow: /x"),
        "http://a.example:8080/robots.txt": (404, None),
    }
    cache = RobotsCache(fake_fetch(answers, calls), TOKEN)
    threads = [
        threading.Thread(target=cache.allowed, args=(url,))
        for url in ["http://a.example/x/1", "http://a.example/y", "http://a.example:8080/x"] * 10
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(calls) == sorted(answers)
    assert not cache.allowed("http://a.example/x/2") and cache.allowed("http://a.example:8080/x")


@pytest.mark.parametrize(
    "values, expected",
    [
        (["noai"], {"noai"}),
        (["NoIndex, NoFollow"], {"noindex", "nofollow"}),
        (["align-recipe: noimageai"], {"noimageai"}),
        (["otherbot: noai, noindex"], set()),
        (["otherbot: noai", "noimageindex"], {"noimageindex"}),
        (["unavailable_after: 25 Jun 2010 15:00:00 PST"], {"unavailable_after"}),
        (["max-image-preview: none"], {"max-image-preview"}),
        (["googlebot: noindex, align-recipe: noai"], {"noai"}),
    ],
)
def test_x_robots_directives_that_apply_to_us(values, expected):
    assert x_robots_directives(values, TOKEN) == expected


@pytest.mark.parametrize(
    "values, directive",
    [
        (["noai"], "noai"),
        (["noimageai"], "noimageai"),
        (["noindex"], "noindex"),
        (["noimageindex"], "noimageindex"),
        (["none"], "none"),
        (["nofollow", "noarchive"], None),
        (["otherbot: noai"], None),
        ([], None),
    ],
)
def test_opt_outs(values, directive):
    assert opts_out(values, TOKEN) == directive
