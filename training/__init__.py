"""The Keras 3 dual encoder: input, model, loss, trainer, vocabulary, evaluation.

Its modules run on TensorFlow, Keras, keras-hub and tensorflow-text, the 'train' extra, which
a curation-only install (a Dataflow worker's) does not have: without it, align-train,
align-vocab, align-eval and align-embed say which extra to install, in one line, and exit 2.

Under another Keras backend (KERAS_BACKEND=jax) the towers, the loss and the config
(training.towers, training.loss, training.config) import without TensorFlow: that is how
bench/accelerator.py trains them on a GPU machine that has JAX and no TensorFlow.
"""

import os

from commandline.extras import require_at_import

if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow":
    require_at_import("train", "the trainer")
