"""Opt-out and purge lists (pipeline/optout.py): the line format and each kind's match."""

from __future__ import annotations

import pyarrow as pa
import pytest

from commandline.flags import UsageError
from pipeline.optout import PhashIndex, parse_list, reason_of

LIST = """# a registry's export
url:http://img.example/a.jpg
page:http://blog.example/post.html
prefix:http://cdn.example/private/
domain:owner.example
uid:0123456789abcdef
sha256:{sha}
phash:ffff0000ffff0000/4
phash:0000000000000001
""".format(sha="ab" * 32)


@pytest.fixture
def optout():
    return parse_list(LIST)


def test_every_kind_is_parsed_and_counted(optout):
    assert optout.entries == 8 and optout.has_image_entries


@pytest.mark.parametrize(
    ("url", "page", "uid", "kind"),
    [
        ("http://img.example/a.jpg", "http://x/", "u", "url"),
        ("http://img.example/b.jpg", "http://blog.example/post.html", "u", "page"),
        ("http://cdn.example/private/c.jpg", "http://x/", "u", "prefix"),
        ("http://x/c.jpg", "http://cdn.example/private/page.html", "u", "prefix"),
        ("http://owner.example/c.jpg", "http://x/", "u", "domain"),
        ("http://img.OWNER.example:8080/c.jpg", "http://x/", "u", "domain"),
        ("http://x/c.jpg", "http://www.owner.example/", "u", "domain"),
        ("http://x/c.jpg", "http://x/", "0123456789abcdef", "uid"),
        ("http://notowner.example/c.jpg", "http://x/", "u", None),
        ("http://cdn.example/public/c.jpg", "http://x/", "u", None),
    ],
)
def test_pair_entries_match_the_image_or_its_page(optout, url, page, uid, kind):
    assert optout.pair_kind(url, page, uid) == kind


def test_image_entries_match_the_digest_or_a_near_phash(optout):
    assert optout.image_kind("AB" * 32, None) == "sha256"
    assert optout.image_kind("cd" * 32, "ffff0000ffff000f") == "phash"  # 4 bits off
    assert optout.image_kind("cd" * 32, "ffff0000ffff001f") is None  # 5 bits off
    assert optout.image_kind(None, "0000000000000001") == "phash"
    assert optout.image_kind(None, "0000000000000003") is None  # distance 0: exact only


def test_phash_index_finds_every_hash_within_its_distance():
    import random

    rng = random.Random(7)
    entries = [(rng.getrandbits(64), rng.randint(0, 10)) for _ in range(200)]
    index = PhashIndex(entries)
    for _ in range(2000):
        value, distance = rng.choice(entries)
        flips = rng.sample(range(64), rng.randint(0, 12))
        probe = value
        for bit in flips:
            probe ^= 1 << bit
        brute = any((probe ^ v).bit_count() <= d for v, d in entries)
        assert index.matches(f"{probe:016x}") == brute


def test_kinds_of_a_table_use_the_columns_it_has(optout):
    table = pa.table(
        {
            "uid": ["a", "b", "c"],
            "url": ["http://img.example/a.jpg", "http://x/1.jpg", "http://x/2.jpg"],
            "sha256": [None, "ab" * 32, "00" * 32],
            "phash": [None, None, "ffff0000ffff0000"],
        }
    )
    assert optout.kinds(table) == ["url", "sha256", "phash"]
    assert optout.kinds(table.drop_columns(["sha256", "phash"])) == ["url", None, None]


def test_urls_are_canonicalised_like_the_crawl_and_comments_skipped():
    found = parse_list("  # comment\n\nurl: http://h/a b.jpg\t\nprefix:http://h/x#frag\n")
    assert found.pair_kind("http://h/a b.jpg") == "url"
    assert found.pair_kind("http://h/x#frag/more") == "prefix"


@pytest.mark.parametrize(
    "line",
    [
        "http://h/a.jpg",
        "host:h",
        "url:",
        "url:ftp://h/a",
        "domain:http://h/",
        "sha256:abc",
        "phash:xyz",
        "phash:0000000000000000/65",
    ],
)
def test_a_bad_line_is_a_usage_error_naming_it(line):
    with pytest.raises(UsageError, match="line 2"):
        parse_list(f"url:http://h/ok.jpg\n{line}\n", "--list l.txt")


def test_reason_names_follow_the_kind():
    assert reason_of("domain") == "opt_out_domain"
