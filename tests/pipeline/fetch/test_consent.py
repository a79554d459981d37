"""Each machine-readable reservation's decision (pipeline/fetch/consent.py)."""

from __future__ import annotations

import pytest

from pipeline.fetch.consent import (
    AI_TXT,
    META_ROBOTS,
    TDM_RESERVATION,
    TDM_RESERVATION_META,
    TDMREP_JSON,
    X_ROBOTS_TAG,
    ai_txt_reservation,
    meta_robots_opt_out,
    page_reservation,
    parse_ai_txt,
    parse_tdmrep,
    tdmrep_reservation,
)

AGENT = "align-recipe"


def reason(headers=None, metas=()):
    found = page_reservation(headers or {}, metas, AGENT)
    return found.reason if found else None


@pytest.mark.parametrize("directive", ["noai", "noimageai", "noindex", "noimageindex", "none"])
def test_each_x_robots_tag_opt_out_directive_reserves_the_page(directive):
    assert reason({"x-robots-tag": f"nofollow, {directive}"}) == X_ROBOTS_TAG


def test_x_robots_tag_for_another_agent_reserves_nothing():
    assert reason({"x-robots-tag": "googlebot: noindex"}) is None
    assert reason({"x-robots-tag": "align-recipe: noai"}) == X_ROBOTS_TAG


def test_repeated_x_robots_tag_lines_are_read_each_on_its_own():
    assert reason({"x-robots-tag": "googlebot: nofollow\nnoai"}) == X_ROBOTS_TAG


def test_x_robots_tag_without_opt_out_reserves_nothing():
    assert reason({"x-robots-tag": "nofollow, max-image-preview:none"}) is None


@pytest.mark.parametrize("name", ["robots", "ROBOTS", "align-recipe"])
def test_meta_robots_for_everyone_or_our_agent_reserves(name):
    assert reason(metas=[(name, "noimageai")]) == META_ROBOTS


def test_meta_robots_for_another_agent_reserves_nothing():
    assert reason(metas=[("googlebot", "noindex")]) is None


def test_meta_robots_directives_split_on_commas_or_spaces_and_ignore_values():
    assert meta_robots_opt_out([("robots", "NoFollow,NOAI")], AGENT) == "noai"
    assert meta_robots_opt_out([("robots", "nofollow noimageindex")], AGENT) == "noimageindex"
    assert meta_robots_opt_out([("robots", "max-image-preview:none")], AGENT) is None


def test_tdm_reservation_header_one_reserves_zero_does_not():
    assert reason({"tdm-reservation": " 1 "}) == TDM_RESERVATION
    assert reason({"tdm-reservation": "0"}) is None


def test_an_unknown_tdm_reservation_value_reserves_nothing():
    assert reason({"tdm-reservation": "yes"}) is None


def test_tdm_policy_alone_reserves_nothing_and_does_not_lift_a_reservation():
    assert reason({"tdm-policy": "https://example.com/policy.json"}) is None
    headers = {"tdm-reservation": "1", "tdm-policy": "https://example.com/policy.json"}
    assert reason(headers) == TDM_RESERVATION


def test_tdm_reservation_meta_reserves():
    assert reason(metas=[("tdm-reservation", "1")]) == TDM_RESERVATION_META
    assert reason(metas=[("tdm-reservation", "0"), ("tdm-policy", "x")]) is None


def test_the_header_is_named_before_the_meta_when_both_reserve():
    assert reason({"x-robots-tag": "noai"}, [("robots", "noai")]) == X_ROBOTS_TAG


TDMREP = b"""[
  {"location": "/public/*", "tdm-reservation": 0},
  {"location": "/img/*.png$", "tdm-reservation": 1, "tdm-policy": "https://e.x/p.json"},
  {"location": "/img/", "tdm-reservation": "1"},
  {"location": "*", "tdm-reservation": 0}
]"""


@pytest.mark.parametrize(
    ("url", "reserved"),
    [
        ("http://h/public/img/a.png", False),  # first matching rule wins
        ("http://h/img/a.png", True),
        ("http://h/img/a.png?x=1", True),  # no "$" match, but "/img/" prefix rule reserves
        ("http://h/img/a.jpg", True),
        ("http://h/other.jpg", False),
    ],
)
def test_tdmrep_json_the_first_matching_location_decides(url, reserved):
    found = tdmrep_reservation(parse_tdmrep(TDMREP), url)
    assert (found is not None and found.reason == TDMREP_JSON) == reserved


@pytest.mark.parametrize("body", [b"", b"<html>not found</html>", b'{"location": "*"}', b"[1, 2]"])
def test_a_tdmrep_json_that_does_not_parse_reserves_nothing(body):
    assert tdmrep_reservation(parse_tdmrep(body), "http://h/a.jpg") is None


AI_TXT_BODY = b"""# Spawning AI
User-Agent: *
Disallow: *.jpg
Disallow: photos/
Allow: /photos/free/
"""


@pytest.mark.parametrize(
    ("url", "reserved"),
    [
        ("http://h/a/b.jpg", True),
        ("http://h/a/b.png", False),
        ("http://h/photos/b.png", True),  # a path without "/" is read from the root
        ("http://h/photos/free/b.png", False),  # the longer allow wins
    ],
)
def test_ai_txt_is_read_as_robots_txt_with_file_type_patterns(url, reserved):
    found = ai_txt_reservation(parse_ai_txt(AI_TXT_BODY, AGENT), url)
    assert (found is not None and found.reason == AI_TXT) == reserved


def test_ai_txt_of_another_agent_only_applies_to_it():
    rules = parse_ai_txt(b"User-Agent: otherbot\nDisallow: /\n", AGENT)
    assert ai_txt_reservation(rules, "http://h/a.jpg") is None
    rules = parse_ai_txt(b"User-Agent: align-recipe\nDisallow: /\n", AGENT)
    assert ai_txt_reservation(rules, "http://h/a.jpg").reason == AI_TXT


def test_an_empty_ai_txt_reserves_nothing():
    assert ai_txt_reservation(parse_ai_txt(b"", AGENT), "http://h/a.jpg") is None
