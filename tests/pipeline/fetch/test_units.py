"""The unit of politeness: a host name, or its registrable domain; batches that own hosts."""

import pytest

from pipeline.fetch.units import (
    batches_by_unit,
    host_of,
    unit_function,
    unit_of_domain,
    unit_of_host,
)


@pytest.mark.parametrize(
    "url, host",
    [
        ("http://Img.Example.COM:8080/a.jpg", "img.example.com"),
        ("https://user@example.com./x", "example.com"),
        ("http://127.0.0.2:9/x", "127.0.0.2"),
        ("ftp://", None),
        ("not a url", None),
    ],
)
def test_host_of(url, host):
    assert host_of(url) == host


@pytest.mark.parametrize(
    "url, domain",
    [
        ("http://img1.cdn.example.com/a.jpg", "example.com"),
        ("http://img2.cdn.example.com/b.jpg", "example.com"),
        ("http://news.bbc.co.uk/x", "bbc.co.uk"),  # a multi-label public suffix
        ("https://someone.github.io/x", "someone.github.io"),  # a private suffix: a site each
        ("http://127.0.0.3/x", "127.0.0.3"),
        ("http://[::1]:8000/x", "::1"),
        ("http://localhost/x", "localhost"),
    ],
)
def test_domain_unit_is_the_registrable_domain(url, domain):
    assert unit_of_domain(url) == domain


def test_host_unit_keeps_subdomains_apart():
    assert unit_of_host("http://img1.cdn.example.com/") != unit_of_host(
        "http://img2.cdn.example.com/"
    )


def test_an_unknown_unit_is_refused():
    with pytest.raises(ValueError, match="host, domain"):
        unit_function("path")


def test_batches_never_share_a_host_and_take_turns_inside():
    urls = [f"http://h{h}.test/{i}" for h in range(5) for i in range(h + 1)]
    batches = batches_by_unit(urls, 4, unit_of_host)
    assert sorted(url for batch in batches for url in batch) == sorted(urls)
    owners = {}
    for number, batch in enumerate(batches):
        for url in batch:
            assert owners.setdefault(host_of(url), number) == number
    assert [host_of(url) for url in batches[0]] == ["h0.test", "h1.test", "h1.test"]
    assert max(len(batch) for batch in batches) == 5  # h4 alone: larger than a batch


def test_batches_by_domain_keep_a_site_together():
    urls = ["http://a.example.com/1", "http://b.example.com/2", "http://other.org/3"]
    batches = batches_by_unit(urls, 1, unit_of_domain)
    assert sorted(map(sorted, batches)) == [sorted(urls[:2]), [urls[2]]]
