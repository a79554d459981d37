"""The archive's scratch index: captures by key bucket, found without reading the rest."""

from pipeline.download.archive_index import (
    DIGEST,
    URL,
    CaptureLookup,
    capture_parts,
)
from pipeline.download.plan import bucket_of
from pipeline.shards import write_parts
from pipeline.warc.capture import Capture

BUCKETS = 4


def capture(path: str, offset: int, kind="response", digest="") -> Capture:
    url = f"http://a.example{path}"
    return Capture(url, "x.warc.gz", offset, 0, "2020-01-01T00:00:00Z", kind, 200,
                   "image/jpeg", digest, "", "", "")  # fmt: skip


def index(tmp_path, captures) -> CaptureLookup:
    path = str(tmp_path / "captures.arrow")
    write_parts(capture_parts(captures, BUCKETS), path)
    return CaptureLookup([path], BUCKETS)


def test_a_lookup_returns_exactly_the_keys_asked_for_whatever_their_bucket(tmp_path):
    captures = [capture(f"/{n}.jpg", n * 100) for n in range(40)]
    keys = [URL + c.url for c in captures]
    assert len({bucket_of(key, BUCKETS) for key in keys}) == BUCKETS  # spread over all
    found = index(tmp_path, captures).find([keys[3], keys[17], keys[30], URL + "http://absent/"])
    assert {key: [c.offset for c in found[key]] for key in found} == {
        keys[3]: [300],
        keys[17]: [1700],
        keys[30]: [3000],
    }


def test_an_original_is_found_by_its_digest_and_a_revisit_is_not(tmp_path):
    original = capture("/o.jpg", 10, digest="sha1:AAA")
    revisit = capture("/r.jpg", 20, kind="revisit", digest="sha1:AAA")
    found = index(tmp_path, [original, revisit]).find([DIGEST + "sha1:AAA"])
    assert found == {DIGEST + "sha1:AAA": [original]}


def test_policy_files_are_found_apart_by_their_url(tmp_path):
    robots, ai, image = capture("/robots.txt", 1), capture("/ai.txt", 2), capture("/i.jpg", 3)
    lookup = index(tmp_path, [robots, ai, image])
    found = lookup.policies([robots.url, ai.url, image.url])
    assert found == {robots.url: [robots], ai.url: [ai]}
