"""The eval-dedup join in one bucket: band hits verified on the full distance, nearest wins."""

import pyarrow as pa

from filters.eval_index import EvalMatch, bands
from pipeline.filter.evaldedup import _verify_within
from pipeline.filter.measure import CANDIDATE_SCHEMA
from pipeline.shards import write_parts

MAX_DISTANCE = 3


def _candidates(tmp_path, rows: dict[int, str]) -> list:
    """Every band of each (row -> phash) as one scratch part, as MeasureBatch writes them."""
    columns = {"band": [], "value": [], "phash": [], "row": []}
    for row, phash in rows.items():
        for band, value in bands(phash, MAX_DISTANCE):
            for name, item in zip(columns, (band, value, phash, row), strict=True):
                columns[name].append(item)
    table = pa.table(columns, schema=CANDIDATE_SCHEMA)
    table = table.append_column("bid", pa.array(["b0"] * table.num_rows))
    return [ref for _, ref in write_parts([(0, table)], str(tmp_path / "c.arrow"))]


def _evals(entries: list[tuple[str, str, str]]) -> list:
    return [
        (0, (band, value, name, image, phash))
        for name, image, phash in entries
        for band, value in bands(phash, MAX_DISTANCE)
    ]


def _matches(tmp_path, rows, entries) -> dict:
    grouped = {"eval": [v for _, v in _evals(entries)], "candidates": _candidates(tmp_path, rows)}
    return dict(_verify_within((0, grouped), MAX_DISTANCE))


def test_a_candidate_within_the_distance_matches_its_nearest_eval_image(tmp_path):
    evals = [("zs", "far.jpg", "00000000000000ff"), ("zs", "near.jpg", "0000000000000001")]
    found = _matches(tmp_path, {5: "0000000000000003"}, evals)
    assert found == {("b0", 5): EvalMatch(1, "zs", "near.jpg")}


def test_a_band_hit_beyond_the_distance_is_no_match(tmp_path):
    # the same first bands, 8 bits apart in the last: a hit on a band, not a near-duplicate
    found = _matches(tmp_path, {0: "00000000000000ff"}, [("zs", "a.jpg", "0000000000000000")])
    assert found == {}


def test_a_bucket_without_eval_images_reads_no_candidates(tmp_path):
    refs = [(str(tmp_path / "missing.arrow"), 0)]  # would raise if it were read
    assert list(_verify_within((0, {"eval": [], "candidates": refs}), MAX_DISTANCE)) == []
