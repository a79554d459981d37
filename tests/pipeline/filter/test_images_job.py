"""align-filter --rules all|none on downloaded records: image rules, eval dedup, TFRecords."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage import data

from filters.rule import ALL, EVAL_SETS, NONE
from filters.table import rules_for
from pipeline.filter.cli import run
from pipeline.filter.tfrecord import read_records
from pipeline.shards import read_table
from pipeline.stats import read_stats
from tests.pipeline.filter.inputs import downloaded, jpeg_bytes, names, noise_image, write_images

CONFIG = "max_alts_per_image: 3\nlanguages: all\neval_max_hamming: 10\n"


def _photo(name: str) -> Image.Image:
    return Image.fromarray(getattr(data, name)()).convert("RGB")


def _rows() -> list[dict]:
    rows, seed = [], iter(range(1000))

    def add(name: str, alt: str, **kwargs) -> None:
        kwargs.setdefault("image", noise_image(next(seed)))
        rows.append(downloaded(f"http://127.0.0.2/{name}.jpg", alt, **kwargs))

    add("size201", "a square picture of a field", original=(201, 201))
    add("size200", "a tall picture of a tower", original=(200, 300))
    add("aspect2.99", "a wide picture of a river", original=(602, 201))
    add("aspect3.0", "a wider picture of a river", original=(603, 201))
    add("http404", "a missing picture of a house", status="http_404")
    add("timeout", "a slow picture of a house", status="timeout")
    for i in range(3):  # one picture served at three URLs with three captions: kept
        add(f"three/{i}", f"a shared picture caption number {i}", content=b"three")
    for i in range(4):  # four captions of one picture: over the limit of 3
        add(f"four/{i}", f"a popular picture caption number {i}", content=b"four")
    add(
        "astronaut", "a resized copy of the astronaut", image=_photo("astronaut").resize((256, 256))
    )
    width, height = 400, 400
    coffee = _photo("coffee").crop((8, 8, 600, 400)).resize((width, height))
    add("coffee", "a cropped copy of the coffee cup", image=coffee)
    add("camera", "an unrelated photo of a camera man", image=_photo("camera"))
    add("short", "two words", original=(100, 100))
    return rows


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("filter_images")
    write_images(root / "in", _rows())
    (root / "config.yaml").write_text(CONFIG)
    evals = root / "eval" / "zs"
    evals.mkdir(parents=True)
    for name in ("astronaut", "coffee"):
        (evals / f"{name}.jpg").write_bytes(jpeg_bytes(_photo(name)))
    (evals / "broken.jpg").write_bytes(b"not an image")
    return root


@pytest.fixture(scope="module")
def out(root) -> Path:
    run(["--input", str(root / "in"), "--output", str(root / "out"), "--rules", "all",
         "--config", str(root / "config.yaml"), "--shards", "3",
         "--eval-images", f"zs={root}/eval/zs/*.jpg"])  # fmt: skip
    return root / "out"


@pytest.fixture(scope="module")
def reasons(out) -> dict[str, list[str]]:
    rows = read_table(str(out / "measurements" / "*.parquet")).to_pylist()
    return {row["url"].split("/", 3)[3].removesuffix(".jpg"): row["reasons"] for row in rows}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("size201", []),
        ("size200", ["image_too_small"]),
        ("aspect2.99", []),
        ("aspect3.0", ["extreme_aspect"]),
        ("http404", ["download_http_404"]),
        ("timeout", ["download_timeout"]),
        ("three/0", []),
        ("four/0", ["image_with_many_alts"]),
        ("four/3", ["image_with_many_alts"]),
        ("astronaut", ["eval_near_duplicate/zs"]),
        ("coffee", ["eval_near_duplicate/zs"]),
        ("camera", []),
        ("short", ["alt_too_short", "image_too_small"]),
    ],
)
def test_each_record_gets_the_expected_reasons_in_rule_order(reasons, name, expected):
    assert reasons[name] == expected


def test_eval_match_names_the_set_image_and_distance(out):
    rejects = read_table(str(out / "rejects" / "*.parquet")).to_pylist()
    (astronaut,) = [r for r in rejects if r["url"].endswith("/astronaut.jpg")]
    assert astronaut["measured"][0].startswith("eval_set=zs,eval_image=astronaut.jpg,distance=")


def test_stats_balance_and_record_eval_sets_and_rules(out):
    stats = read_stats(str(out))
    assert stats["balanced"] and stats["in"] == len(_rows())
    assert stats["eval_sets"] == {"zs": 3}
    assert stats["counts"]["eval/zs/images"] == 2
    assert stats["counts"]["eval/zs/undecodable"] == 1
    assert stats["rules"] == names(rules_for(ALL, [EVAL_SETS]))  # CONFIG: languages all
    assert stats["nsfw_applied"] is False


def test_tfrecord_shards_hold_the_kept_records_as_tf_examples(out):
    import tensorflow as tf

    shards = sorted((out / "shards").glob("align-*.tfrecord"))
    assert [p.name for p in shards] == [f"align-0000{i}-of-00003.tfrecord" for i in range(3)]
    examples = [
        tf.train.Example.FromString(record)
        for path in shards
        for record in read_records(path.read_bytes())
    ]
    sidecar = read_table(str(out / "shards" / "align-*.parquet"))
    stats = read_stats(str(out))
    assert len(examples) == sidecar.num_rows == stats["kept"]
    features = {
        e.features.feature["uid"].bytes_list.value[0].decode(): e.features.feature for e in examples
    }
    assert set(features) == set(sidecar.column("uid").to_pylist())
    for feature in features.values():
        image = Image.open(io.BytesIO(feature["image/encoded"].bytes_list.value[0]))
        assert image.size == (
            feature["image/width"].int64_list.value[0],
            feature["image/height"].int64_list.value[0],
        )
        assert feature["image/format"].bytes_list.value[0] == b"jpeg"
        assert feature["text"].bytes_list.value[0]
    assert "image" not in sidecar.column_names


def test_rerun_writes_byte_identical_shards(root, out, tmp_path):
    run(["--input", str(root / "in"), "--output", str(tmp_path), "--rules", "all",
         "--config", str(root / "config.yaml"), "--shards", "3", "--batch-rows", "4",
         "--eval-images", f"zs={root}/eval/zs/*.jpg"])  # fmt: skip
    for path in sorted((out / "shards").iterdir()) + sorted((out / "rejects").iterdir()):
        again = tmp_path / path.parent.name / path.name
        assert path.read_bytes() == again.read_bytes(), path.name


def test_rules_none_keeps_every_ok_download_and_names_the_failures(root, tmp_path):
    run(["--input", str(root / "in"), "--output", str(tmp_path), "--rules", "none"])
    stats = read_stats(str(tmp_path))
    failures = {"download_http_404": 1, "download_timeout": 1}
    assert stats["rejected"] == failures and stats["rules"] == names(rules_for(NONE))
    assert stats["kept"] == len(_rows()) - 2 and stats["balanced"]


def test_rules_all_refuses_pair_input_with_a_clear_error(tmp_path, capsys):
    from tests.pipeline.filter.inputs import pair, write_pairs

    source = write_pairs(tmp_path / "in", [pair("http://127.0.0.2/a.jpg", "a b c")])
    (source / "images-00000-of-00001.parquet").write_bytes(
        (source / "pairs-00000-of-00001.parquet").read_bytes()
    )
    with pytest.raises(SystemExit):
        run(["--input", str(source), "--output", str(tmp_path / "o"), "--rules", "all"])
    error = capsys.readouterr().err
    assert "lacks columns 'status'" in error and "run align-download on them first" in error


def test_nsfw_scores_route_back_to_their_rows_and_reject_above_threshold(tmp_path):
    from tests.pipeline.filter.test_nsfw_scores import redness_model

    model = tmp_path / "redness.keras"
    redness_model(16).save(model)
    red = Image.fromarray(np.full((32, 32, 3), (230, 20, 20), np.uint8))
    blue = Image.fromarray(np.full((32, 32, 3), (10, 30, 220), np.uint8))
    rows = [
        downloaded("http://127.0.0.2/red.jpg", "a red square on a page", image=red),
        downloaded("http://127.0.0.2/blue.jpg", "a blue square on a page", image=blue),
        downloaded("http://127.0.0.2/gone.jpg", "a missing square on a page", status="http_404"),
    ]
    source = write_images(tmp_path / "in", rows)
    run(["--input", str(source), "--output", str(tmp_path / "out"), "--languages", "all",
         "--nsfw-model", str(model), "--nsfw-threshold", "0.5"])  # fmt: skip
    stats = read_stats(str(tmp_path / "out"))
    assert stats["nsfw_applied"] and stats["rejected"]["nsfw"] == 1 and stats["kept"] == 1
    measured = read_table(str(tmp_path / "out/measurements/*")).to_pylist()
    (red_row,) = [r for r in measured if r["url"].endswith("red.jpg")]
    assert red_row["reasons"] == ["nsfw"] and red_row["measured"][0].startswith("nsfw_score=0.9")


def test_an_opt_out_list_drops_listed_images_before_any_rule_counted_by_kind(root, tmp_path):
    rows = {row["url"].split("/", 3)[3]: row for row in _rows()}
    near = f"{int(rows['camera.jpg']['phash'], 16) ^ 0b111:016x}"  # 3 bits off the camera
    (tmp_path / "opt-out.txt").write_text(
        f"sha256:{rows['three/0.jpg']['sha256']}\n"  # three/0..2 share these bytes
        f"phash:{near}/3\n"
        "url:http://127.0.0.2/size201.jpg\n"
    )
    out = tmp_path / "out"
    run(["--input", str(root / "in"), "--output", str(out), "--rules", "all",
         "--config", str(root / "config.yaml"), "--shards", "1",
         "--opt-out", str(tmp_path / "opt-out.txt")])  # fmt: skip
    stats = read_stats(str(out))
    listed = {k: v for k, v in stats["rejected"].items() if k.startswith("opt_out")}
    assert listed == {"opt_out_sha256": 3, "opt_out_phash": 1, "opt_out_url": 1}
    assert stats["balanced"] and stats["in"] == len(_rows())
    kept = set(read_table(str(out / "shards" / "*.parquet")).column("url").to_pylist())
    measured = set(read_table(str(out / "measurements" / "*.parquet")).column("url").to_pylist())
    gone = {"http://127.0.0.2/size201.jpg", "http://127.0.0.2/camera.jpg"}
    gone |= {f"http://127.0.0.2/three/{i}.jpg" for i in range(3)}
    assert not gone & (kept | measured)
