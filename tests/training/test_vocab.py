"""align-vocab learns a deterministic WordPiece vocabulary that the shared tokenizer loads."""

import pytest

from tests.training.synthetic import make_pairs, write_shards
from training import vocab
from training.cli import vocab as align_vocab
from training.tokenize import AlignTokenizer


@pytest.fixture(scope="module")
def shards(tmp_path_factory):
    return write_shards(tmp_path_factory.mktemp("vocab_shards"), make_pairs(120, 16, seed=3), 3)


@pytest.fixture(scope="module")
def learned(shards, tmp_path_factory):
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    pieces = align_vocab.run(["--shards", shards, "--output", str(path), "--vocab-size", "120"])
    return path, pieces


def test_vocabulary_file_holds_reserved_tokens_first_then_pieces(learned):
    path, pieces = learned
    lines = path.read_text().splitlines()
    assert lines == pieces
    assert lines[:5] == ["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"]
    assert {"red", "circle", "background"} <= set(lines)


def test_vocabulary_respects_the_size_cap(learned):
    assert len(learned[1]) <= 120


def test_same_shards_give_the_same_vocabulary(learned, shards, tmp_path):
    again = align_vocab.run(
        ["--shards", shards, "--output", str(tmp_path / "v.txt"), "--vocab-size", "120"]
    )
    assert again == learned[1]


def test_tfrecords_and_sidecars_hold_the_same_texts(shards):
    sidecars = vocab.text_files(shards)
    assert all(path.endswith(".parquet") for path in sidecars)
    records = [path.replace(".parquet", ".tfrecord") for path in sidecars]
    from_records = sorted(text for batch in vocab.read_texts(records) for text in batch)
    from_sidecars = sorted(text for batch in vocab.read_texts(sidecars) for text in batch)
    assert from_records == from_sidecars and len(from_records) == 120


def test_learned_vocabulary_tokenises_captions_without_unknowns(learned):
    tokenizer = AlignTokenizer(learned[1], lowercase=True, max_tokens=12)
    ids = tokenizer(["A Red circle on a plain background"])["token_ids"].numpy()[0]
    unknown = learned[1].index("[UNK]")
    assert ids[0] == learned[1].index("[CLS]") and unknown not in ids


def test_tokenizer_wraps_in_cls_sep_and_pads_to_max_tokens():
    pieces = ["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]", "a", "red", "circle"]
    out = AlignTokenizer(pieces, lowercase=True, max_tokens=6)(["A red circle", "red " * 9])
    assert out["token_ids"].numpy().tolist() == [[1, 5, 6, 7, 2, 0], [1, 6, 6, 6, 6, 2]]
    assert out["padding_mask"].numpy().tolist() == [[1, 1, 1, 1, 1, 0], [1] * 6]


def test_missing_shards_is_a_one_line_error(tmp_path, capsys):
    with pytest.raises(SystemExit):
        align_vocab.run(
            ["--shards", str(tmp_path / "x-*.tfrecord"), "--output", str(tmp_path / "v")]
        )
    assert capsys.readouterr().err.startswith("align-vocab: error: no training shards match")
