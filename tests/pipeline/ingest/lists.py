"""URL lists as people have them, written in every format align-ingest reads (test fixtures)."""

from __future__ import annotations

import csv
import gzip
import io
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

# (caption, url, similarity): clean rows, then one of each kind of bad row.
ROWS = [(f"a photo of thing number {i} \u00e9t\u00e9", f"http://img{i % 3}.example/{i}.jpg", i / 40)
        for i in range(24)]  # fmt: skip
ROWS += [
    ("  spaces   and\ttabs ", "http://img0.example/spaces.jpg", 0.9),
    ("a photo of thing number 3 \u00e9t\u00e9", "http://img0.example/3.jpg", 0.5),  # duplicate
    ("no url at all", "", 0.1),
    ("an ftp url", "ftp://img0.example/x.jpg", 0.2),
    ("", "http://img0.example/no-caption.jpg", 0.3),
]
EXPECTED = {"in": 29, "kept": 25, "rejected": {"duplicate": 1, "no_url": 1, "bad_url": 1,
            "empty_caption": 1}}  # fmt: skip


def write_tsv(path: Path, rows=ROWS, header: bool = False, compress: bool = False) -> Path:
    """CC3M's layout: caption<TAB>url, no header; with a header, a similarity column too."""
    lines = ["caption\turl\tsimilarity"] if header else []
    for caption, url, similarity in rows:
        fields = [caption.replace("\t", " "), url] + [str(similarity)] * header
        lines.append("\t".join(fields))
    data = ("\n".join(lines) + "\n").encode()
    path.write_bytes(gzip.compress(data, mtime=0) if compress else data)
    return path


def write_csv(path: Path, rows=ROWS) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["url", "caption", "similarity"])
    writer.writerows((url, caption, s) for caption, url, s in rows)
    path.write_text(buffer.getvalue())
    return path


def records(rows=ROWS) -> list[dict]:
    return [{"url": url, "caption": caption, "similarity": s} for caption, url, s in rows]


def write_jsonl(path: Path, rows=ROWS) -> Path:
    path.write_text("".join(json.dumps(record) + "\n" for record in records(rows)))
    return path


def write_json(path: Path, rows=ROWS) -> Path:
    path.write_text(json.dumps(records(rows), indent=1))
    return path


def laion_table(rows=ROWS) -> pa.Table:
    """LAION's columns: URL, TEXT, similarity, WIDTH/HEIGHT as the list says, NSFW."""
    return pa.table(
        {
            "URL": [url or None for _, url, _ in rows],
            "TEXT": [caption for caption, _, _ in rows],
            "similarity": [s for _, _, s in rows],
            "WIDTH": pa.array([640 + i for i in range(len(rows))], pa.int64()),
            "NSFW": ["UNLIKELY"] * len(rows),
        }
    )


def write_laion(path: Path, rows=ROWS, row_group_size: int = 8) -> Path:
    pq.write_table(laion_table(rows), path, row_group_size=row_group_size)
    return path


WRITERS = {
    "tsv": lambda folder: write_tsv(folder / "cc3m.tsv"),
    "tsv.gz": lambda folder: write_tsv(folder / "cc3m.tsv.gz", header=True, compress=True),
    "csv": lambda folder: write_csv(folder / "list.csv"),
    "jsonl": lambda folder: write_jsonl(folder / "list.jsonl"),
    "json": lambda folder: write_json(folder / "list.json"),
    "parquet": lambda folder: write_laion(folder / "part-00000.parquet"),
}
