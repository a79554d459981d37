"""Real crawl files: align-crawl against an independent extractor, file by file.

    .venv/bin/python bench/real_crawls.py [FOLDER] [--show 3] [--no-job]

For every WARC, ARC or WAT file under FOLDER (gzipped or not, found by walking the folder), runs
align-crawl on that file alone (the Beam job, DirectRunner) and an independent extractor built
on other people's code: warcio reads the records (and undoes chunked and content encodings),
html5lib parses the pages and finds its own encoding, ``<img src>`` (or ``data-src``) resolves
against ``<base href>`` and the page URL with the standard library. WAT files are read with
warcio and ``json``. Prints per file: the independent's pairs, how many of them align-crawl
found (recall), align-crawl's extra pairs, whether stats.json balanced, and the first
differences. Alt-texts are compared after collapsing whitespace and dropping control characters
on both sides (align-crawl drops them on purpose; see docs/stages.md, "Mojibake stays mojibake").

Needs the ``bench`` extra (html5lib). Without FOLDER it says so and skips (``make bench`` on a
fresh clone); a FOLDER that does not exist is an error (status 2).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import re
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SUFFIXES = (".warc", ".warc.gz", ".arc", ".arc.gz", ".wat", ".wat.gz", ".wet", ".wet.gz")
HTML_TYPES = ("text/html", "application/xhtml+xml")
SNIFFABLE = ("", "unknown/unknown", "application/unknown", "*/*", "application/octet-stream")
CONTROLS = re.compile("[\x00-\x08\x0e-\x1f\x7f-\x9f]")
URL_NOISE = re.compile(r"[\t\n\r]")

Pair = tuple[str, str]


def comparable(alt: str) -> str:
    return " ".join(CONTROLS.sub("", alt).split())


@dataclass
class Independent:
    """What warcio + html5lib find in one file."""

    pairs: dict[Pair, str] = field(default_factory=dict)  # pair -> its first page
    records: int = 0
    pages: int = 0
    stopped: str = ""  # why warcio stopped reading early, if it did
    controls: int = 0  # alt-texts holding control characters (mojibake), compared without them


def sniffs_as_html(body: bytes) -> bool:
    head = body[:512].lstrip(b"\xef\xbb\xbf \t\r\n\f").lower()
    return head.startswith((b"<!doctype html", b"<html", b"<head", b"<body", b"<img", b"<!--"))


def html_pairs(body: bytes, content_type: str, page_url: str) -> list[tuple[str, str]]:
    """html5lib's view of a page: every <img> with an http(s) URL and a non-empty alt."""
    import html5lib

    charset = re.search(r"charset\s*=\s*[\"']?([\w.:-]+)", content_type or "", re.IGNORECASE)
    tree = html5lib.parse(
        body,
        treebuilder="etree",
        namespaceHTMLElements=False,
        transport_encoding=charset.group(1) if charset else None,
    )
    base = page_url
    for node in tree.iter("base"):
        if node.get("href") is not None:
            base = urljoin(page_url, URL_NOISE.sub("", node.get("href").strip()))
            break
    pairs = []
    for node in tree.iter("img"):
        alt = " ".join((node.get("alt") or "").split())
        src = (node.get("src") or "").strip() or (node.get("data-src") or "").strip()
        if alt and src:
            url = absolute_http(base, src)
            if url:
                pairs.append((url, alt))
    return pairs


def absolute_http(base: str, reference: str) -> str | None:
    try:
        url = urljoin(base, URL_NOISE.sub("", reference))
        parts = urlsplit(url)
    except ValueError:
        return None
    return url if parts.scheme in ("http", "https") and parts.hostname else None


def wat_pairs(payload: bytes) -> tuple[str, list[Pair]]:
    """A WAT metadata record's IMG@/src and IMG@/data-src links, resolved against Head.Base."""
    from html import unescape

    envelope = json.loads(payload)["Envelope"]
    page = envelope["WARC-Header-Metadata"].get("WARC-Target-URI", "")
    response = envelope.get("Payload-Metadata", {}).get("HTTP-Response-Metadata", {})
    if envelope["WARC-Header-Metadata"].get("WARC-Type") != "response":
        return page, []
    if not str(response.get("Response-Message", {}).get("Status", "200")).startswith("2"):
        return page, []
    html = response.get("HTML-Metadata") or {}
    base = urljoin(page, (html.get("Head") or {}).get("Base") or "")
    pairs = []
    for link in html.get("Links") or []:
        if link.get("path") in ("IMG@/src", "IMG@/data-src"):
            alt = " ".join(unescape(link.get("alt") or "").split())
            url = absolute_http(base, unescape(link.get("url") or "").strip())
            if alt and url:
                pairs.append((url, alt))
    return page, pairs


def independent(path: Path) -> Independent:
    from warcio.archiveiterator import ArchiveIterator

    found = Independent()
    wat = ".wat" in path.name
    with open(path, "rb") as stream, contextlib.redirect_stderr(io.StringIO()):
        records = ArchiveIterator(stream, arc2warc=True)  # (its warnings would flood the table)
        try:
            for record in records:
                found.records += 1
                for (url, alt), page in record_pairs(record, wat, found):
                    found.controls += comparable(alt) != alt
                    found.pairs.setdefault((url, comparable(alt)), page)
        except Exception as error:  # noqa: BLE001 - the peer's own limits are part of the report
            found.stopped = f"{type(error).__name__}: {str(error)[:80]}"
    return found


def record_pairs(record, wat: bool, found: Independent):
    page = (record.rec_headers.get_header("WARC-Target-URI") or "").strip("<>")
    if wat:
        if record.rec_type != "metadata":
            return
        page, pairs = wat_pairs(record.content_stream().read())
        found.pages += 1
        yield from ((pair, page) for pair in pairs)
        return
    if record.rec_type != "response" or record.http_headers is None:
        return
    status = record.http_headers.get_statuscode() or ""
    if not status.startswith("2"):
        return
    content_type = record.http_headers.get_header("Content-Type") or ""
    body = record.content_stream().read()
    mime = content_type.split(";")[0].strip().lower()
    if mime not in HTML_TYPES and not (mime in SNIFFABLE and sniffs_as_html(body)):
        return
    found.pages += 1
    yield from ((pair, page) for pair in html_pairs(body, content_type, page))


@dataclass
class Ours:
    pairs: dict[Pair, str]
    stats: dict


def ours(path: Path, job: bool) -> Ours:
    """align-crawl's pairs of one file: the whole job, or (``job=False``) its harvest step."""
    if job:
        return ours_by_job(path)
    from collections import Counter

    from pipeline.crawl.harvest import HarvestOptions
    from pipeline.crawl.job import HarvestFile, tally_of

    pairs, tally = {}, Counter()
    for outcome in HarvestFile("auto", HarvestOptions()).outcomes(str(path)):
        tally.update(tally_of(outcome))
        for url, alt in outcome.pairs:
            pairs.setdefault((url, comparable(alt)), outcome.page_url)
    rejected = {key[9:]: n for key, n in tally.items() if key.startswith("rejected/")}
    stats = {"in": tally["in"], "kept": tally["kept"], "rejected": rejected}
    stats["balanced"] = stats["in"] == stats["kept"] + sum(rejected.values())
    return Ours(pairs, stats)


def ours_by_job(path: Path) -> Ours:
    from pipeline.crawl.cli import run
    from pipeline.shards import read_table
    from pipeline.stats import read_stats

    with tempfile.TemporaryDirectory() as output:
        with contextlib.redirect_stdout(io.StringIO()):
            run(["--input", str(path), "--output", output])
        table = read_table(os.path.join(output, "pairs-*.parquet"), ["url", "alt", "page_url"])
        rows = zip(*(table.column(n).to_pylist() for n in ("url", "alt", "page_url")), strict=True)
        pairs = {(url, comparable(alt)): page for url, alt, page in rows}
        return Ours(pairs, read_stats(output))


def crawl_files(folder: Path) -> list[Path]:
    return sorted(
        path
        for path in folder.rglob("*")
        if path.is_file() and path.name.lower().endswith(SUFFIXES)
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "folder", type=Path, nargs="?", help="a folder of WARC/ARC/WAT files (walked)"
    )
    parser.add_argument("--show", type=int, default=3, help="differences shown per file")
    parser.add_argument(
        "--no-job", action="store_true", help="run the job's harvest step only (faster)"
    )
    args = parser.parse_args()
    if args.folder is None:
        print("real_crawls: no folder of real crawl files given: nothing compared (skipped)")
        return 0
    if not args.folder.is_dir():
        print(f"real_crawls: {args.folder} is absent: nothing to compare (no files, no figures)")
        return 2
    files = crawl_files(args.folder)
    if not files:
        print(f"real_crawls: no WARC/ARC/WAT files under {args.folder}")
        return 2
    rows, notes = [], []
    for path in files:
        name = str(path.relative_to(args.folder))
        row, differences = compare(path, name, not args.no_job, args.show)
        rows.append(row)
        notes += differences
    print_table(rows)
    if notes:
        print("\nfirst differences:")
        print("\n".join(f"  {note}" for note in notes))
    return 0


@dataclass
class Row:
    name: str
    records: int
    kept: int
    theirs: int
    found: int
    extra: int
    balanced: bool

    @property
    def recall(self) -> float:
        return self.found / self.theirs if self.theirs else 1.0


def compare(path: Path, name: str, job: bool, show: int) -> tuple[Row, list[str]]:
    """One file's row of the table, and its first differences."""
    theirs, mine = independent(path), ours(path, job)
    expected = set(theirs.pairs)
    found = expected & set(mine.pairs)
    missing, extra = sorted(expected - found), sorted(set(mine.pairs) - expected)
    stats = mine.stats
    row = Row(name, stats["in"], stats["kept"], len(expected), len(found), len(extra),
              bool(stats.get("balanced")))  # fmt: skip
    notes = []
    for label, pairs, pages in (("missing", missing, theirs.pairs), ("extra", extra, mine.pairs)):
        for url, alt in pairs[:show]:
            page = pages[(url, alt)]
            notes.append(f"{name}: {label} {alt[:50]!r} -> {url[:90]} (page {page[:70]})")
    if theirs.controls:
        notes.append(f"{name}: {theirs.controls} alt-texts hold control characters (mojibake)")
    if theirs.stopped:
        notes.append(f"{name}: warcio stopped after {theirs.records} records: {theirs.stopped}")
    return row, notes


def print_table(rows: list[Row]) -> None:
    """A Markdown table: one row per file, then the totals."""
    print("| file | records | kept | independent pairs | found | recall | extra | balanced |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |")
    for row in rows:
        print(
            f"| {row.name} | {row.records} | {row.kept} | {row.theirs} | {row.found} | "
            f"{row.recall:.1%} | {row.extra} | {'yes' if row.balanced else '**no**'} |"
        )
    theirs, found = sum(r.theirs for r in rows), sum(r.found for r in rows)
    total = Row("all files", sum(r.records for r in rows), sum(r.kept for r in rows), theirs,
                found, sum(r.extra for r in rows), all(r.balanced for r in rows))  # fmt: skip
    print(
        f"| **{total.name}** | {total.records} | {total.kept} | {theirs} | {found} | "
        f"{total.recall:.1%} | {total.extra} | {'yes' if total.balanced else '**no**'} |"
    )
    print(f"\nlowest recall of a file: {min(row.recall for row in rows):.1%}")


if __name__ == "__main__":
    sys.exit(main())
