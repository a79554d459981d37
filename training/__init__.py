"""The Keras 3 dual encoder: input, model, loss, trainer, vocabulary, evaluation."""
