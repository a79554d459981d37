"""The one text tokenisation shared by training, export and eval: WordPiece, [CLS] .. [SEP]."""

from __future__ import annotations

import keras_hub
import tensorflow as tf

CLS, SEP, PAD, UNK = "[CLS]", "[SEP]", "[PAD]", "[UNK]"


def text_preprocessor(
    vocabulary: str | list[str], lowercase: bool = True, max_tokens: int = 64
) -> keras_hub.models.BertTextClassifierPreprocessor:
    """keras-hub's BERT preprocessor: strings [B] -> token_ids, padding_mask (bool), segment_ids.

    A stock keras-hub layer, so a model that holds it (text_encoder.keras) loads without this
    project, the vocabulary travelling as its asset. Its dtype is "string", the dtype of what
    it takes: a Sequential model that starts with it builds a string input.
    """
    return keras_hub.models.BertTextClassifierPreprocessor(
        keras_hub.tokenizers.BertTokenizer(vocabulary=vocabulary, lowercase=lowercase),
        sequence_length=max_tokens,
        dtype="string",
    )


class AlignTokenizer:
    """Turns strings into BERT inputs exactly as the trainer saw them.

    ``texts`` (a string tensor or list, shape [B]) become ``{"token_ids": int32 [B, L],
    "padding_mask": int32 [B, L]}``: WordPiece pieces truncated to L - 2, wrapped as
    ``[CLS] pieces [SEP]`` and right-padded with ``[PAD]`` (ALIGN: BERT, max 64 tokens). Works
    eagerly and inside ``tf.data`` maps, so training and evaluation cannot drift apart; the
    export saves ``preprocessor`` itself.
    """

    def __init__(self, vocabulary: str | list[str], lowercase: bool = True, max_tokens: int = 64):
        self.lowercase = lowercase
        self.max_tokens = max_tokens
        self.preprocessor = text_preprocessor(vocabulary, lowercase, max_tokens)
        self.tokenizer = self.preprocessor.tokenizer
        for token in (CLS, SEP, PAD):
            self.tokenizer.token_to_id(token)  # a vocabulary without them fails here, by name

    @property
    def vocabulary_size(self) -> int:
        return self.tokenizer.vocabulary_size()

    def __call__(self, texts) -> dict[str, tf.Tensor]:
        packed = self.preprocessor(tf.convert_to_tensor(texts, tf.string))
        return {
            "token_ids": tf.cast(packed["token_ids"], tf.int32),
            "padding_mask": tf.cast(packed["padding_mask"], tf.int32),
        }
