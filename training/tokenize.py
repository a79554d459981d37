"""The one text tokenisation shared by training, export and eval: WordPiece, [CLS] .. [SEP]."""

from __future__ import annotations

import keras_hub
import tensorflow as tf

CLS, SEP, PAD, UNK = "[CLS]", "[SEP]", "[PAD]", "[UNK]"


class AlignTokenizer:
    """Turns strings into BERT inputs exactly as the trainer saw them.

    ``texts`` (a string tensor or list, shape [B]) become ``{"token_ids": int32 [B, L],
    "padding_mask": int32 [B, L]}``: WordPiece pieces truncated to L - 2, wrapped as
    ``[CLS] pieces [SEP]`` and right-padded with ``[PAD]`` (ALIGN: BERT, max 64 tokens). Works
    eagerly and inside ``tf.data`` maps, so training and evaluation cannot drift apart.
    """

    def __init__(self, vocabulary: str | list[str], lowercase: bool = True, max_tokens: int = 64):
        self.lowercase = lowercase
        self.max_tokens = max_tokens
        self.tokenizer = keras_hub.tokenizers.BertTokenizer(
            vocabulary=vocabulary, lowercase=lowercase
        )
        token_id = self.tokenizer.token_to_id
        self.packer = keras_hub.layers.StartEndPacker(
            sequence_length=max_tokens,
            start_value=token_id(CLS),
            end_value=token_id(SEP),
            pad_value=token_id(PAD),
            return_padding_mask=True,
        )

    @property
    def vocabulary_size(self) -> int:
        return self.tokenizer.vocabulary_size()

    def __call__(self, texts) -> dict[str, tf.Tensor]:
        token_ids, padding_mask = self.packer(self.tokenizer(texts))
        return {
            "token_ids": tf.cast(token_ids, tf.int32),
            "padding_mask": tf.cast(padding_mask, tf.int32),
        }
