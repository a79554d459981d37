"""A batch's id names its scratch file and keys the join of flags back to its rows."""

import pyarrow as pa

from filters.text import shuffle_key
from pipeline.filter_measure import batch_id, bounded_keys


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
