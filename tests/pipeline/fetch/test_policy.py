"""A host's policy files at download time: robots.txt, ai.txt and tdmrep.json, fetched once
per host and run, and what each answer means for a URL."""

import json

import pytest

from pipeline.fetch.policy import HOST_FILES, POLICY_UNREACHABLE, HostPolicies, prefetch

TOKEN = "align-recipe"
ORIGIN = "http://img.example"
TDMREP = json.dumps(
    [
        {"location": "/reserved/*", "tdm-reservation": 1},
        {"location": "/open/*", "tdm-reservation": 0},
        {"location": "/*", "tdm-reservation": 1},
    ]
).encode()


class FakeHost:
    """Answers per path, and every path asked for."""

    def __init__(self, answers: dict[str, tuple[int | None, bytes | None]]):
        self.answers = answers
        self.asked: list[str] = []

    def __call__(self, url: str) -> tuple[int | None, bytes | None]:
        path = url[len(ORIGIN) :]
        self.asked.append(path)
        return self.answers.get(path, (404, b"not found"))


def policies(answers) -> tuple[HostPolicies, FakeHost]:
    host = FakeHost(answers)
    return HostPolicies(host, TOKEN, HOST_FILES), host


def test_ai_txt_reserves_what_it_disallows_for_our_token_or_everyone():
    found, _ = policies({"/ai.txt": (200, b"User-agent: *\nDisallow: *.png\nDisallow: /ai/\n")})
    assert found.refusal(ORIGIN + "/a.png")[0] == "ai_txt"
    assert found.refusal(ORIGIN + "/ai/x.jpg")[0] == "ai_txt"
    assert found.refusal(ORIGIN + "/b.jpg") is None


def test_tdmrep_json_first_matching_location_decides():
    found, _ = policies({"/.well-known/tdmrep.json": (200, TDMREP)})
    assert found.refusal(ORIGIN + "/reserved/a.jpg")[0] == "tdmrep_json"
    assert found.refusal(ORIGIN + "/open/a.jpg") is None
    assert found.refusal(ORIGIN + "/elsewhere.jpg")[0] == "tdmrep_json"


@pytest.mark.parametrize("answer", [(404, b""), (410, b""), (200, b"<html>soft 404</html>")])
def test_a_missing_or_unparsable_file_reserves_nothing(answer):
    found, _ = policies({"/ai.txt": answer, "/.well-known/tdmrep.json": answer})
    assert found.refusal(ORIGIN + "/a.jpg") is None


@pytest.mark.parametrize("answer", [(503, b""), (429, b""), (None, None)])
def test_a_file_that_cannot_be_had_leaves_the_host_for_a_later_run(answer):
    found, host = policies({"/.well-known/tdmrep.json": answer})
    status, why = found.refusal(ORIGIN + "/a.jpg")
    assert status == POLICY_UNREACHABLE and "tdmrep.json of img.example" in why


def test_each_file_is_fetched_once_per_host_and_recorded():
    found, host = policies({"/ai.txt": (200, b"User-agent: *\nDisallow:\n")})
    for index in range(5):
        found.refusal(f"{ORIGIN}/{index}.jpg")
    assert sorted(host.asked) == ["/.well-known/tdmrep.json", "/ai.txt", "/robots.txt"]
    records = {record.file: record.outcome for record in found.records}
    assert records == {"robots.txt": "missing", "ai.txt": "rules", "tdmrep.json": "missing"}


def test_a_host_robots_txt_closes_is_never_asked_for_its_other_files():
    found, host = policies({"/robots.txt": (503, b"")})
    assert found.refusal(ORIGIN + "/a.jpg")[0] == "robots_unreachable"
    assert host.asked == ["/robots.txt"]


def test_answers_fetched_by_the_planner_are_used_not_fetched_again():
    host = FakeHost({"/ai.txt": (200, b"User-agent: align-recipe\nDisallow: /\n")})
    answers, records = prefetch(host, [ORIGIN], HOST_FILES)
    assert [record.file for record in records] == ["robots.txt", "ai.txt", "tdmrep.json"]
    part = HostPolicies(FakeHost({}), TOKEN, HOST_FILES, known=answers)
    assert part.refusal(ORIGIN + "/a.jpg")[0] == "ai_txt"
    assert part.records == []  # the planner recorded them


def test_a_page_crawl_reads_robots_txt_only():
    host = FakeHost({"/ai.txt": (200, b"User-agent: *\nDisallow: /\n")})
    found = HostPolicies(host, TOKEN)
    assert found.refusal(ORIGIN + "/a.html") is None and host.asked == ["/robots.txt"]
