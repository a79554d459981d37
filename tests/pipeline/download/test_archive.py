"""align-download --archive on WARCs written here with warcio: which capture a pair gets, and
that everything after the bytes is the live path's."""

import hashlib
import io
import json
import socket
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from pipeline.download.cli import run
from pipeline.records import PAIR_SCHEMA, make_uid
from pipeline.shards import read_table, rows_to_table
from tests.pipeline.fetch.testserver import ScriptedServer, respond

HOST = "http://archived.example"
FLAGS = ["--rows-per-shard", "4", "--allow-private-networks", "--per-host-rate", "0"]


def jpeg(colour, size=(60, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


RED, GREEN, BLUE, GREY = jpeg((200, 0, 0)), jpeg((0, 200, 0)), jpeg((0, 0, 200)), jpeg((90,) * 3)
OLD, NEW = jpeg((10, 10, 10)), jpeg((240, 240, 240))


class Archive:
    """A WARC file written with warcio, remembering where each record starts."""

    def __init__(self, path: Path):
        self.path = path
        self.handle = open(path, "wb")  # noqa: SIM115 - closed by close()
        self.writer = WARCWriter(self.handle, gzip=True)
        self.offsets: dict[str, int] = {}
        self.cdxj: list[str] = []  # what a pywb indexer would write, record by record

    def response(self, url, body, date, content_type="image/jpeg", status="200 OK", headers=()):
        fields = [("Content-Type", content_type), *headers]
        http = StatusAndHeaders(status, fields, protocol="HTTP/1.1")
        record = self.writer.create_warc_record(
            url, "response", payload=io.BytesIO(body), http_headers=http,
            warc_headers_dict={"WARC-Date": date},
        )  # fmt: skip
        digest = "D" + hashlib.sha1(body).hexdigest()
        return self._write(url, record, date, content_type, status.split()[0], digest)

    def revisit(self, url, original_url, original_date, date):
        http = StatusAndHeaders("200 OK", [("Content-Type", "image/jpeg")], protocol="HTTP/1.1")
        record = self.writer.create_revisit_record(
            url, "sha1:UNUSED", original_url, original_date, http_headers=http,
            warc_headers_dict={"WARC-Date": date},
        )  # fmt: skip
        digest = "D" + hashlib.sha1(BLUE).hexdigest()  # its original's payload
        return self._write("revisit " + url, record, date, "warc/revisit", "200", digest)

    def _write(self, name, record, date, mime, status, digest) -> int:
        offset = self.handle.tell()
        self.writer.write_record(record)
        self.offsets.setdefault(name, offset)
        url = record.rec_headers.get_header("WARC-Target-URI")
        stamp = "".join(ch for ch in date if ch.isdigit())
        fields = {"url": url, "mime": mime, "status": status, "digest": digest}
        fields.update(offset=str(offset), filename=self.path.name)
        self.cdxj.append(f"{url} {stamp} {json.dumps(fields)}")
        return offset

    def close(self):
        self.handle.close()

    def source(self, name) -> str:
        return f"{self.path}@{self.offsets[name]}"


def pair(url, page_source, page_date=None, alt="a photo") -> dict:
    row = {"uid": make_uid(url, alt), "url": url, "alt": alt, "page_url": HOST + "/"}
    return {**row, "source": page_source, "page_date": page_date}


def write_pairs(folder: Path, rows: list[dict]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    schema = PAIR_SCHEMA.append(pa.field("page_date", pa.string()))
    rows = sorted(rows, key=lambda row: row["uid"])
    pq.write_table(rows_to_table(rows, schema), folder / "pairs-00000-of-00001.parquet")


@pytest.fixture(scope="module")
def archives(tmp_path_factory):
    """Two WARC files: the pages' (a.warc.gz) and a later crawl's (b.warc.gz)."""
    root = tmp_path_factory.mktemp("archive")
    a, b = Archive(root / "a.warc.gz"), Archive(root / "b.warc.gz")
    a.response(HOST + "/index.html", b"<html></html>", "2020-01-01T00:00:00Z", "text/html")
    a.response(HOST + "/red.jpg", RED, "2020-01-01T00:00:01Z")
    a.response(HOST + "/moved.jpg", b"", "2020-01-01T00:00:02Z", "text/html",
               "302 Found", [("Location", "/green.jpg")])  # fmt: skip
    a.response(HOST + "/green.jpg", GREEN, "2020-01-01T00:00:03Z")
    a.response(HOST + "/blue.jpg", BLUE, "2020-01-01T00:00:04Z")
    a.revisit(
        HOST + "/again.jpg", HOST + "/blue.jpg", "2020-01-01T00:00:04Z", "2021-06-01T00:00:00Z"
    )
    a.response(HOST + "/text.jpg", b"this is no image", "2020-01-01T00:00:05Z")
    a.response(HOST + "/noai.jpg", GREY, "2020-01-01T00:00:06Z", headers=[("X-Robots-Tag", "noai")])
    a.response(HOST + "/private/p.jpg", GREY, "2020-01-01T00:00:07Z")
    a.response(HOST + "/robots.txt", b"User-agent: *\nDisallow: /private/\n",
               "2020-01-01T00:00:08Z", "text/plain")  # fmt: skip
    # The same URL captured twice elsewhere: 2019 and 2023.
    b.response(HOST + "/twice.jpg", OLD, "2019-01-01T00:00:00Z")
    b.response(HOST + "/twice.jpg", NEW, "2023-01-01T00:00:00Z")
    b.response(HOST + "/cut.jpg", GREY, "2023-01-01T00:00:01Z")
    a.close()
    b.close()
    data = b.path.read_bytes()
    b.path.write_bytes(data[: b.offsets[HOST + "/cut.jpg"] + 400])  # cut inside the last record
    page = a.source(HOST + "/index.html")
    return root, a, b, page


def download(root: Path, rows: list[dict], *flags) -> dict:
    """Runs the job on these pairs; returns its rows by URL."""
    write_pairs(root / "pairs", rows)
    stats = run(["--input", str(root / "pairs"), "--output", str(root / "images"), *FLAGS, *flags])
    table = read_table(str(root / "images" / "images-*.parquet")).to_pylist()
    assert stats["in"] == len(rows) and stats["balanced"]  # in == kept + rejected + deferred
    return {row["url"]: row for row in table}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture(scope="module")
def archived(archives, tmp_path_factory):
    """One --archive-only job over every case, with a socket guard that fails on any connect."""
    root, a, b, page = archives
    urls = ["red", "moved", "again", "twice", "text", "cut", "noai", "private/p", "absent"]
    rows = [pair(f"{HOST}/{name}.jpg", page, "2022-12-01T00:00:00Z") for name in urls]
    out = tmp_path_factory.mktemp("job")
    guard = pytest.MonkeyPatch()
    attempts = []

    def refuse(self, address, *args):
        attempts.append(address)
        raise OSError(f"the test forbids connecting to {address}")

    guard.setattr(socket.socket, "connect", refuse)
    guard.setattr(socket, "getaddrinfo", lambda *a, **k: attempts.append(a) or [])
    try:
        by_url = download(out, rows, "--archive", str(root / "*.warc.gz"), "--archive-only")
    finally:
        guard.undo()
    return by_url, attempts, a, b


def test_an_exact_capture_gives_its_payload_and_names_its_record(archived):
    by_url, _, a, _ = archived
    row = by_url[HOST + "/red.jpg"]
    assert (row["status"], row["sha256"]) == ("ok", sha(RED))
    assert row["image_source"] == a.source(HOST + "/red.jpg")


def test_a_redirect_is_followed_inside_the_archive(archived):
    by_url, _, a, _ = archived
    row = by_url[HOST + "/moved.jpg"]
    assert (row["status"], row["sha256"]) == ("ok", sha(GREEN))
    assert row["image_source"] == a.source(HOST + "/green.jpg")


def test_a_revisit_is_resolved_to_its_original(archived):
    by_url, _, a, _ = archived
    row = by_url[HOST + "/again.jpg"]
    assert (row["status"], row["sha256"]) == ("ok", sha(BLUE))
    assert row["image_source"] == a.source(HOST + "/blue.jpg")


def test_of_several_captures_the_nearest_to_the_page_wins(archived):
    by_url, _, _, b = archived
    row = by_url[HOST + "/twice.jpg"]  # page 2022-12: the 2023 capture, not 2019's
    assert (row["status"], row["sha256"]) == ("ok", sha(NEW))


def test_a_capture_that_is_no_image_or_cut_short_is_rejected_by_name(archived):
    by_url, *_ = archived
    assert by_url[HOST + "/text.jpg"]["status"] == "not_an_image"
    assert by_url[HOST + "/cut.jpg"]["status"] == "truncated"
    assert "cut.jpg" not in (by_url[HOST + "/cut.jpg"]["image_source"] or "")


def test_archived_consent_signals_apply(archived):
    by_url, *_ = archived
    assert by_url[HOST + "/noai.jpg"]["status"] == "x_robots_tag"
    private = by_url[HOST + "/private/p.jpg"]
    assert private["status"] == "robots_disallowed"
    assert "archived at" in private["error"]


def test_archive_only_rejects_what_the_archive_lacks_without_any_connection(archived):
    by_url, attempts, *_ = archived
    assert by_url[HOST + "/absent.jpg"]["status"] == "not_in_archive"
    assert attempts == []


def test_with_no_page_date_the_capture_in_the_pages_file_wins_else_the_latest(archives, tmp_path):
    root, a, b, page = archives
    rows = [pair(HOST + "/twice.jpg", "elsewhere.warc.gz@0"), pair(HOST + "/red.jpg", page)]
    by_url = download(tmp_path, rows, "--archive", str(root / "*.warc.gz"), "--archive-only")
    assert by_url[HOST + "/twice.jpg"]["sha256"] == sha(NEW)
    assert by_url[HOST + "/red.jpg"]["sha256"] == sha(RED)


def test_a_pair_not_in_the_archive_is_fetched_live_and_says_so(archives, tmp_path):
    root, a, _, page = archives
    server = ScriptedServer(hosts=("127.0.0.1",))
    try:
        server.routes["/robots.txt"] = respond(404)
        server.routes["/live.jpg"] = respond(200, GREY, content_type="image/jpeg")
        live = server.url("/live.jpg")
        rows = [pair(live, page), pair(HOST + "/red.jpg", page)]
        by_url = download(tmp_path, rows, "--archive", str(root / "a.warc.gz"))
        assert len(server.hits("/live.jpg")) == 1
    finally:
        server.close()
    assert (by_url[live]["status"], by_url[live]["image_source"]) == ("ok", live)
    assert by_url[HOST + "/red.jpg"]["image_source"] == a.source(HOST + "/red.jpg")


def test_a_cdxj_index_replaces_the_index_pass(archives, tmp_path):
    """Captures come from the index alone (red.jpg left out of it is not found); a redirect's
    Location is read from its record, a revisit resolved by digest."""
    root, a, b, page = archives
    lines = [line for line in a.cdxj + b.cdxj if "/red.jpg" not in line]
    (tmp_path / "index.cdxj").write_text("\n".join(sorted(lines)) + "\n")
    names = ["red", "moved", "again", "twice"]
    rows = [pair(f"{HOST}/{name}.jpg", page, "2022-12-01T00:00:00Z") for name in names]
    flags = ["--archive", str(root / "*.warc.gz"), "--archive-only"]
    by_url = download(tmp_path, rows, *flags, "--archive-index", str(tmp_path / "*.cdxj"))
    assert by_url[HOST + "/red.jpg"]["status"] == "not_in_archive"
    assert by_url[HOST + "/moved.jpg"]["sha256"] == sha(GREEN)
    assert by_url[HOST + "/again.jpg"]["sha256"] == sha(BLUE)
    assert by_url[HOST + "/twice.jpg"]["sha256"] == sha(NEW)


def test_a_rerun_after_losing_a_shard_is_byte_identical(archives, tmp_path):
    root, _, _, page = archives
    names = ["red", "moved", "again", "twice", "text", "absent", "green", "blue", "noai"]
    rows = [pair(f"{HOST}/{name}.jpg", page, "2022-12-01T00:00:00Z", alt=f"alt {i}")
            for i, name in enumerate(names) for _ in range(1)]  # fmt: skip
    flags = ["--archive", str(root / "*.warc.gz"), "--archive-only"]
    download(tmp_path, rows, *flags)
    shards = sorted((tmp_path / "images").glob("images-*.parquet"))
    assert len(shards) > 1
    first = {path.name: path.read_bytes() for path in shards}
    shards[0].unlink()  # a list that had not finished when the job was killed
    shards[1].write_bytes(first[shards[1].name][:100])  # one killed while publishing
    download(tmp_path, rows, *flags)
    again = {
        path.name: path.read_bytes() for path in sorted((tmp_path / "images").glob("*.parquet"))
    }
    assert again == first


RESERVED = "http://reserved.example"


def test_archived_ai_txt_and_tdmrep_json_apply_and_are_recorded_with_their_capture(tmp_path):
    """The host's captured policy files are applied as live ones are, and written to
    policies/ with their record's place and capture time (nothing is fetched)."""
    archive = Archive(tmp_path / "c.warc.gz")
    tdmrep = b'[{"location": "/tdm/*", "tdm-reservation": 1}]'
    files = {
        "robots.txt": (b"User-agent: *\nAllow: /\n", "text/plain"),
        "ai.txt": (b"User-Agent: *\nDisallow: /ai/\n", "text/plain"),
        ".well-known/tdmrep.json": (tdmrep, "application/json"),
    }
    for second, (path, (body, kind)) in enumerate(files.items()):
        archive.response(f"{RESERVED}/{path}", body, f"2020-02-01T00:00:0{second}Z", kind)
    for name in ("ai/a.jpg", "tdm/t.jpg", "free.jpg"):
        archive.response(f"{RESERVED}/{name}", GREY, "2020-02-01T00:00:09Z")
    archive.close()
    rows = [pair(f"{RESERVED}/{name}", "elsewhere.warc.gz@0") for name in ("ai/a", "tdm/t", "free")]
    rows = [{**row, "url": row["url"] + ".jpg"} for row in rows]
    by_url = download(tmp_path, rows, "--archive", str(archive.path), "--archive-only")
    assert by_url[RESERVED + "/ai/a.jpg"]["status"] == "ai_txt"
    assert by_url[RESERVED + "/tdm/t.jpg"]["status"] == "tdmrep_json"
    assert by_url[RESERVED + "/free.jpg"]["status"] == "ok"
    recorded = read_table(str(tmp_path / "images" / "policies" / "*.parquet")).to_pylist()
    expected = {
        (Path(path).name, "rules", sha(body), len(body), archive.source(f"{RESERVED}/{path}"),
         f"2020-02-01T00:00:0{second}Z")
        for second, (path, (body, _)) in enumerate(files.items())
    }  # fmt: skip
    got = {
        (r["file"], r["outcome"], r["sha256"], r["size"], r["source"], r["fetched_at"])
        for r in recorded
    }
    assert got == expected
    assert {(r["host"], r["origin"]) for r in recorded} == {("reserved.example", RESERVED)}
