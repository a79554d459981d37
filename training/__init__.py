"""The Keras 3 dual encoder: input, model, loss, trainer, vocabulary, evaluation.

Its modules run on TensorFlow, Keras, keras-hub and tensorflow-text, the 'train' extra, which
a curation-only install (a Dataflow worker's) does not have: without it, align-train,
align-vocab, align-eval and align-embed say which extra to install, in one line, and exit 2.
"""

from filters.extras import require_at_import

require_at_import("train", "the trainer")
