"""Hand-encoded tf.train.Example and TFRecord framing agree with TensorFlow's own."""

from __future__ import annotations

import pytest

from pipeline.filter import tfrecord as filter_tfrecord
from pipeline.filter.tfrecord import encode_example, frame_record, masked_crc32c, read_records

FEATURES = {
    "image/encoded": b"\x00\xff\xd8 bytes",
    "image/format": "jpeg",
    "image/height": 346,
    "image/width": 519,
    "text": "un café \u202e rtl \U0001f600",
    "uid": "0123456789abcdef",
    "url": "http://127.0.0.2:8080/a.jpg",
    "negative": -3,
    "empty": b"",
}


@pytest.fixture(scope="module")
def tf():
    import tensorflow

    return tensorflow


def test_example_round_trips_through_tf_train_example(tf):
    example = tf.train.Example.FromString(encode_example(FEATURES))
    feature = example.features.feature
    assert feature["image/encoded"].bytes_list.value == [FEATURES["image/encoded"]]
    assert feature["text"].bytes_list.value[0].decode() == FEATURES["text"]
    assert feature["image/height"].int64_list.value == [346]
    assert feature["negative"].int64_list.value == [-3]
    assert feature["empty"].bytes_list.value == [b""]


def test_encoding_is_tensorflows_deterministic_serialization(tf):
    data = encode_example(FEATURES)
    assert tf.train.Example.FromString(data).SerializeToString(deterministic=True) == data


def test_framed_records_read_back_with_tf_data(tf, tmp_path):
    path = tmp_path / "x.tfrecord"
    records = [encode_example(FEATURES), b"", b"second"]
    path.write_bytes(b"".join(frame_record(r) for r in records))
    assert list(tf.data.TFRecordDataset(str(path)).as_numpy_iterator()) == records
    assert read_records(path.read_bytes()) == records


def test_corrupt_record_is_detected():
    data = bytearray(frame_record(b"payload"))
    data[14] ^= 1
    with pytest.raises(ValueError, match="corrupt"):
        read_records(bytes(data))


def test_pure_python_crc32c_matches_the_native_one(monkeypatch):
    import importlib

    import google_crc32c

    native = masked_crc32c(b"123456789")
    monkeypatch.setitem(__import__("sys").modules, "google_crc32c", None)
    fallback = importlib.reload(filter_tfrecord)
    try:
        assert fallback._crc32c(b"123456789") == 0xE3069283  # the CRC-32C check value
        assert fallback.masked_crc32c(b"123456789") == native
    finally:
        monkeypatch.setitem(__import__("sys").modules, "google_crc32c", google_crc32c)
        importlib.reload(filter_tfrecord)
