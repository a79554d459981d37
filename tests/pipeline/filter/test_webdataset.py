"""align-filter --output-format webdataset: tar shards the webdataset package reads back with
the TFRecords' keys, captions and image bytes, the sidecar as JSON, the same bytes on rerun."""

from __future__ import annotations

import filecmp
import json
import tarfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline.filter.cli import run
from pipeline.filter.tfrecord import read_records
from pipeline.records import DOWNLOAD_SCHEMA
from pipeline.shards import read_table, rows_to_table
from tests.pipeline.filter.inputs import downloaded, noise_image

SHARDS = 3
FLAGS = ["--rules", "all", "--languages", "all", "--rare-token-min-count", "1"]
FLAGS += ["--shards", str(SHARDS)]


def write_input(folder: Path) -> Path:
    """Downloaded records with a list's extras (a float, a text, a null)."""
    rows = [
        downloaded(
            f"http://127.0.0.2/{i}.jpg",
            f"a kite number {i} in the blue sky",
            image=noise_image(i, (240, 220)),
            original=(480, 440),
        )  # fmt: skip
        for i in range(16)
    ]
    rows.append(downloaded("http://127.0.0.2/gone.jpg", "a kite that is gone", status="http_404"))
    table = rows_to_table(rows, DOWNLOAD_SCHEMA)
    table = table.append_column("similarity", pa.array([i / 20 for i in range(17)]))
    table = table.append_column("NSFW", pa.array(["UNLIKELY"] * 16 + [None]))
    folder.mkdir(parents=True)
    pq.write_table(table, folder / "images-00000-of-00001.parquet")
    return folder


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("webdataset")
    source = write_input(root / "in")
    for name in ("first", "second"):
        both = ["--output-format", "tfrecord,webdataset"]
        run(["--input", str(source), "--output", str(root / name), *FLAGS, *both])
    return root


def tfrecord_samples(shard: Path) -> list[dict]:
    import tensorflow as tf

    samples = []
    for record in read_records(shard.read_bytes()):
        feature = tf.train.Example.FromString(record).features.feature
        samples.append({
            "key": feature["uid"].bytes_list.value[0].decode(),
            "text": feature["text"].bytes_list.value[0].decode(),
            "image": feature["image/encoded"].bytes_list.value[0],
        })  # fmt: skip
    return samples


def webdataset_samples(shard: Path) -> list[dict]:
    import webdataset as wds

    return [
        {"key": s["__key__"], "text": s["txt"].decode(), "image": s["jpg"], "json": s["json"]}
        for s in wds.WebDataset(str(shard), shardshuffle=False, empty_check=False)
    ]


@pytest.mark.parametrize("index", range(SHARDS))
def test_each_tar_holds_its_tfrecord_shards_keys_captions_and_image_bytes(runs, index):
    name = f"align-{index:05d}-of-{SHARDS:05d}"
    shards = runs / "first" / "shards"
    tar, tfrecord = (
        webdataset_samples(shards / f"{name}.tar"),
        tfrecord_samples(shards / f"{name}.tfrecord"),
    )
    assert [{k: s[k] for k in ("key", "text", "image")} for s in tar] == tfrecord


def test_all_kept_records_are_in_the_tars_and_the_json_is_the_sidecar_row(runs):
    shards = runs / "first" / "shards"
    samples = [s for path in sorted(shards.glob("*.tar")) for s in webdataset_samples(path)]
    sidecar = {row["uid"]: row for row in read_table(str(shards / "*.parquet")).to_pylist()}
    assert len(samples) == len(sidecar) == 16
    for sample in samples:
        assert json.loads(sample["json"]) == sidecar[sample["key"]]
    assert {json.loads(s["json"])["NSFW"] for s in samples} == {"UNLIKELY"}


def test_reruns_write_byte_identical_tars_with_fixed_headers(runs):
    names = sorted(p.name for p in (runs / "first" / "shards").glob("*.tar"))
    same, different, errors = filecmp.cmpfiles(
        runs / "first" / "shards", runs / "second" / "shards", names, shallow=False
    )
    assert same == names and len(names) == SHARDS
    with tarfile.open(runs / "first" / "shards" / names[0]) as tar:
        members = tar.getmembers()
    assert [m.name for m in members] == sorted(m.name for m in members)
    assert {(m.mtime, m.uid, m.gid, m.uname, m.gname, m.mode) for m in members} == {
        (0, 0, 0, "", "", 0o644)
    }


def test_webdataset_alone_writes_no_tfrecords(tmp_path):
    source = write_input(tmp_path / "in")
    run(["--input", str(source), "--output", str(tmp_path / "out"), *FLAGS,
         "--output-format", "webdataset"])  # fmt: skip
    shards = tmp_path / "out" / "shards"
    assert not list(shards.glob("*.tfrecord")) and len(list(shards.glob("*.tar"))) == SHARDS


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--output-format", "tfrecord,zip"], "--output-format 'tfrecord,zip': choose from"),
        (["--rules", "text", "--output-format", "webdataset"], "is for --rules all/none"),
    ],
)
def test_a_bad_output_format_is_a_one_line_error(tmp_path, capsys, flags, message):
    source = write_input(tmp_path / "in")
    with pytest.raises(SystemExit):
        run(["--input", str(source), "--output", str(tmp_path / "out"), *flags])
    assert message in capsys.readouterr().err
