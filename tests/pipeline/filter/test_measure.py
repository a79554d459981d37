"""A batch's id names its scratch file and keys the join of flags back to its rows; what
the batch sends to the frequency joins, and the NSFW scores sent back, travel as refs to
scratch files."""

import pyarrow as pa
from apache_beam import pvalue

from filters.config import FilterConfig
from filters.rule import TEXT
from filters.table import rules_for
from filters.text import shuffle_key
from pipeline.filter.apply import SpillScores, score_rows
from pipeline.filter.measure import MeasureBatch, batch_id, bounded_keys
from pipeline.shards import read_parts


def _batch(pages: list[str]) -> pa.Table:
    return pa.table({"uid": ["a", "b"], "alt": ["x", "y"], "page_url": pages})


def test_batches_with_the_same_uids_on_other_pages_get_other_ids():
    assert batch_id(_batch(["p0", "p1"])) != batch_id(_batch(["p2", "p3"]))


def test_the_same_batch_gets_the_same_id_whatever_its_chunking():
    whole = _batch(["p0", "p1"])
    assert batch_id(whole) == batch_id(whole.slice(0, 2).combine_chunks())


def test_image_bytes_are_not_hashed_into_the_id():
    first = _batch(["p0", "p1"]).append_column("image", pa.array([b"1", b"2"]))
    second = _batch(["p0", "p1"]).append_column("image", pa.array([b"3", b"4"]))
    assert batch_id(first) == batch_id(second)


def test_long_keys_become_digests_and_short_ones_stay():
    keys = ["a", "x" * 65, "b" * 64, "é" * 70]
    assert bounded_keys(pa.array(keys)).to_pylist() == [shuffle_key(key) for key in keys]


def _measured(tmp_path, alts: list[str]) -> list:
    pairs = pa.table(
        {
            "uid": [f"{i:08x}" for i in range(len(alts))],
            "url": [f"http://x/{i}.jpg" for i in range(len(alts))],
            "alt": alts,
        }
    )
    measure = MeasureBatch(rules_for(TEXT), FilterConfig(), 1000, 4, str(tmp_path))
    return list(measure.process(pairs))


def test_partials_leave_the_batch_as_refs_to_scratch_files(tmp_path):
    outputs = _measured(tmp_path, ["red fox", "red hen"])
    tokens = [out.value for out in outputs if isinstance(out, pvalue.TaggedOutput)
              and out.tag == "rare_tokens"]  # fmt: skip
    assert tokens and all(isinstance(ref, tuple) and len(ref) == 2 for _, ref in tokens)
    keys = {key for part in read_parts(ref for _, ref in tokens) for key in part["key"].to_pylist()}
    assert keys == {"red", "fox", "hen", "red fox", "red hen"}


def test_each_rule_writes_one_scratch_file_per_batch(tmp_path):
    outputs = _measured(tmp_path, [f"caption number {i}" for i in range(50)])
    for tag in ("rare_tokens", "images_per_alt"):
        refs = [out.value[1] for out in outputs if getattr(out, "tag", None) == tag]
        assert len(refs) > 1 and len({path for path, _ in refs}) == 1


def test_nsfw_scores_reach_their_batches_as_refs_whatever_the_flushes(tmp_path):
    spill = SpillScores(str(tmp_path), flush_rows=3)
    spill.start_bundle()
    routed = [("b1/0", 0.9), ("b2/4", 0.1), ("b1/2", 0.5), ("b2/1", 0.2)]
    outputs = [out for element in routed for out in spill.process(element)]
    assert len(outputs) == 2  # the first three flushed: a ref for each batch among them
    outputs += [windowed.value for windowed in spill.finish_bundle()]
    by_batch: dict = {}
    for bid, ref in outputs:
        by_batch.setdefault(bid, []).append(ref)
    assert sorted(score_rows(by_batch["b1"])) == [(0, 0.9), (2, 0.5)]
    assert sorted(score_rows(by_batch["b2"])) == [(1, 0.2), (4, 0.1)]
