"""Every job's door: fed another job's output, a LAION-style Parquet, a TSV, an empty file or
garbage, each job either does the right thing or stops before any work with one line naming
the file and what to run instead: never a traceback, never exit 0 with a field dropped.

The outputs are real: a LAION-style list is ingested, text-filtered, downloaded from a local
server and filtered into shards here, once for the module.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pipeline.crawl import cli as crawl
from pipeline.download import cli as download
from pipeline.filter import cli as filter_job
from pipeline.ingest import cli as ingest
from pipeline.shards import read_table
from tests.pipeline.fetch.testserver import ScriptedServer, respond
from tests.pipeline.ingest.lists import write_laion, write_tsv

ROWS = [(f"a photo of a red kite number {i} over the hill", i) for i in range(12)]
FETCH = ["--allow-private-networks", "--read-timeout", "3", "--per-host-rate", "0"]
TEXT = ["--rules", "text", "--languages", "all", "--rare-token-min-count", "1"]
ALL = ["--rules", "all", "--languages", "all", "--rare-token-min-count", "1"]


def noise_jpeg(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (240, 320, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """Each kind of input a job may be handed, by name -> path."""
    root = tmp_path_factory.mktemp("doors")
    server = ScriptedServer()
    try:
        rows = []
        for caption, index in ROWS:
            image = respond(200, noise_jpeg(index), content_type="image/jpeg")
            server.routes[f"/kite/{index}.jpg"] = image
            rows.append((caption, server.url(f"/kite/{index}.jpg"), index / 10))
        paths = {
            "laion parquet": write_laion(root / "laion.parquet", rows),
            "tsv": write_tsv(root / "cc3m.tsv", rows),
            "empty file": root / "empty.parquet",
            "garbage": root / "garbage.parquet",
        }
        paths["empty file"].write_bytes(b"")
        paths["garbage"].write_bytes(
            bytes(np.random.default_rng(0).integers(0, 256, 4096, np.uint8))
        )
        paths["ingest output"] = root / "ingested"
        ingest.run(["--input", str(paths["laion parquet"]), "--output", str(root / "ingested")])
        paths["text output"] = root / "text"
        filter_job.run(["--input", str(root / "ingested"), "--output", str(root / "text"), *TEXT])
        paths["download output"] = root / "images"
        download.run(["--input", str(root / "text"), "--output", str(root / "images"), *FETCH])
        paths["filter all output"] = root / "final" / "shards"
        filter_job.run(["--input", str(root / "images"), "--output", str(root / "final"), *ALL])
        yield paths
    finally:
        server.close()


def refused(capsys, run, argv: list[str], output: Path) -> str:
    """Runs a job that must refuse its input; returns its one line of error."""
    with pytest.raises(SystemExit) as exit_info:
        run(argv)
    error = capsys.readouterr().err
    assert exit_info.value.code == 2 and len(error.strip().splitlines()) == 1, error
    assert "Traceback" not in error and not output.exists()  # stopped before any work
    return error


def test_the_chain_from_a_laion_parquet_loses_no_row_and_no_column(outputs):
    final = read_table(str(outputs["filter all output"] / "*.parquet"))
    assert final.num_rows == len(ROWS)
    assert {"similarity", "input_WIDTH", "NSFW"} <= set(final.column_names)


NOT_PARQUET = "is not a Parquet file: make pair shards of a url+caption list with align-ingest"
NOT_PAIRS = ("lacks columns 'uid', 'url', 'alt' and", "list with align-ingest --input")
# (job, input) -> phrases of the one-line error.
REFUSALS = {
    ("crawl", "ingest output"): "is a Parquet file, not WARC/WAT",
    ("crawl", "download output"): "is a Parquet file, not WARC/WAT",
    ("crawl", "laion parquet"): "is a Parquet file, not WARC/WAT",
    ("crawl", "tsv"): "looks like a URL list, not WARC/WAT: make pair shards",
    ("crawl", "empty file"): "the file is empty (0 bytes), nothing to crawl",
    ("ingest", "ingest output"): "holds pair shards already",
    ("ingest", "text output"): "holds pair shards already",
    ("ingest", "download output"): "holds pair shards already",
    ("ingest", "filter all output"): "holds pair shards already",
    ("ingest", "empty file"): "is empty (0 bytes)",
    ("ingest", "garbage"): "not a Parquet file",
    ("text", "laion parquet"): NOT_PAIRS,
    ("text", "tsv"): NOT_PARQUET,
    ("text", "empty file"): "is empty (0 bytes)",
    ("text", "garbage"): "is not a Parquet file",
    ("text", "filter all output"): "no pair or image shards match",
    ("download", "laion parquet"): NOT_PAIRS,
    ("download", "tsv"): NOT_PARQUET,
    ("download", "empty file"): "is empty (0 bytes)",
    ("download", "garbage"): "is not a Parquet file",
    ("download", "filter all output"): "no pair shards match",
    ("download", "download output"): "holds downloaded images already: give them to align-filter",
    ("all", "ingest output"): "holds pair shards, not downloaded images: run align-download",
    ("all", "text output"): "holds pair shards, not downloaded images: run align-download",
    ("all", "laion parquet"): NOT_PAIRS,
    ("all", "tsv"): NOT_PARQUET,
    ("all", "empty file"): "is empty (0 bytes)",
    ("all", "garbage"): "is not a Parquet file",
    ("all", "filter all output"): "no image shards match",
}  # fmt: skip
JOBS = {
    "crawl": (crawl.run, []),
    "ingest": (ingest.run, []),
    "text": (filter_job.run, TEXT),
    "download": (download.run, FETCH),
    "all": (filter_job.run, ALL),
}


@pytest.mark.parametrize("job, source", sorted(REFUSALS))
def test_a_foreign_input_is_refused_in_one_line_before_any_work(
    outputs, tmp_path, capsys, job, source
):
    run, flags = JOBS[job]
    output = tmp_path / "out"
    error = refused(
        capsys, run, ["--input", str(outputs[source]), "--output", str(output), *flags], output
    )
    phrases = REFUSALS[job, source]
    for phrase in (phrases,) if isinstance(phrases, str) else phrases:
        assert phrase in error
    assert str(outputs[source]) in error


@pytest.mark.parametrize(
    "job, source, unit",
    [
        ("ingest", "laion parquet", len(ROWS)),
        ("ingest", "tsv", len(ROWS)),
        ("text", "ingest output", len(ROWS)),
        ("text", "download output", len(ROWS)),
        ("download", "ingest output", len(ROWS)),
        ("all", "download output", len(ROWS)),
    ],
)
def test_an_input_a_job_can_take_gives_a_balanced_run_that_keeps_the_extras(
    outputs, tmp_path, job, source, unit
):
    run, flags = JOBS[job]
    stats = run(["--input", str(outputs[source]), "--output", str(tmp_path / "out"), *flags])
    assert stats["balanced"] and stats["in"] == unit
    if job in ("text", "download") and source != "tsv":
        written = read_table(str(tmp_path / "out" / "*.parquet"))
        assert {"similarity", "input_WIDTH", "NSFW"} <= set(written.column_names)


def test_a_crawl_of_garbage_says_in_one_line_that_no_file_held_a_record(outputs, tmp_path, capsys):
    # Garbage is read (it could be a damaged WARC), then the job says nothing was in it.
    with pytest.raises(SystemExit) as exit_info:
        crawl.run(["--input", str(outputs["garbage"]), "--output", str(tmp_path / "out")])
    error = capsys.readouterr().err
    assert exit_info.value.code == 2 and len(error.strip().splitlines()) == 1, error
    assert "no WARC, ARC or WAT record in any file" in error and str(outputs["garbage"]) in error
