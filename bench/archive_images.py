"""align-download --archive checked against warcio, file by file.

    .venv/bin/python bench/archive_images.py --archive 'GLOB' --images DIR

Reads every WARC/ARC file the glob names with warcio (not our reader) and keeps, for each
URL, its ``response`` and ``resource`` records whose content type is an image: where each
starts and the sha256 of what warcio returns as its payload (transfer and content codings
undone). Then every row of ``DIR/images-*.parquet`` whose image URL has such a record must
have been given exactly those bytes: its ``image_source`` is one of those records and its
``sha256`` (of the bytes before resizing) is that record's. Prints per file the pairs checked,
matched and mismatched, the pairs whose URL has no image record there, and exits 1 on any
mismatch.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import sys
from collections import Counter, defaultdict
from pathlib import Path

import pyarrow.parquet as pq
from warcio.archiveiterator import ArchiveIterator

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.warc.capture import canonical_url  # noqa: E402 - after the path is set


def image_records(paths: list[str]) -> dict[str, dict[str, str]]:
    """canonical URL -> {``file@offset``: sha256 of the payload} over image records."""
    found: dict[str, dict[str, str]] = defaultdict(dict)
    for path in paths:
        with open(path, "rb") as handle:
            records = ArchiveIterator(handle, arc2warc=True)
            for record in records:
                if record.rec_type not in ("response", "resource"):
                    continue
                if record.rec_type == "response" and record.http_headers is not None:
                    kind = record.http_headers.get_header("Content-Type") or ""
                else:
                    kind = record.rec_headers.get_header("Content-Type") or ""
                url = canonical_url(record.rec_headers.get_header("WARC-Target-URI") or "")
                if not kind.lower().startswith("image/") or url is None:
                    continue
                digest = hashlib.sha256(record.content_stream().read()).hexdigest()
                found[url][f"{path}@{records.get_record_offset()}"] = digest
    return found


def check(rows: list[dict], records: dict[str, dict[str, str]]) -> dict[str, Counter]:
    """Per archive file: pairs checked, matched, mismatched; pairs with no image record."""
    per_file: dict[str, Counter] = defaultdict(Counter)
    for row in rows:
        captured = records.get(canonical_url(row["url"]) or "", {})
        if not captured:
            per_file["(no image record)"]["pairs"] += 1
            continue
        files = {source.rpartition("@")[0] for source in captured}
        source = row.get("image_source") or ""
        file = source.rpartition("@")[0] if source in captured else sorted(files)[0]
        counts = per_file[file]
        counts["pairs"] += 1
        if source in captured and captured[source] == row["sha256"]:
            counts["exact bytes"] += 1
        else:
            counts["MISMATCH"] += 1
            print(f"mismatch: {row['url']} got {source} {row['status']} {row['sha256']}")
    return per_file


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--archive", required=True, help="the glob given to align-download")
    parser.add_argument("--images", required=True, help="align-download's output directory")
    args = parser.parse_args(argv)
    records = image_records(sorted(glob.glob(args.archive)))
    shards = sorted(glob.glob(str(Path(args.images) / "images-*.parquet")))
    rows = pq.read_table(shards, columns=["url", "status", "sha256", "image_source"]).to_pylist()
    per_file = check(rows, records)
    print(f"{'file':40} {'pairs':>6} {'exact bytes':>12} {'mismatch':>9}")
    for file, counts in sorted(per_file.items()):
        name = Path(file).name if file.startswith(("/", ".")) or "/" in file else file
        print(f"{name:40} {counts['pairs']:6} {counts['exact bytes']:12} {counts['MISMATCH']:9}")
    return 1 if any(counts["MISMATCH"] for counts in per_file.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
