"""ALIGN's contrastive loss: normalised softmax both ways over the global batch's negatives."""

from __future__ import annotations

import keras
from keras import ops


def gather_from_replicas(local):
    """Concatenates every replica's rows (with gradients); returns (global rows, my offset).

    ``ReplicaContext.all_gather`` is differentiable: its gradient all-reduces the upstream
    gradient and hands each replica its own slice, so a replica's embeddings get the gradient
    of every replica's loss terms in which they serve as negatives. Outside TensorFlow (the
    JAX backend of bench/accelerator.py) there is one replica; TensorFlow is imported only
    here, so the loss runs where it is not installed.
    """
    if keras.backend.backend() != "tensorflow":
        return local, 0
    import tensorflow as tf  # noqa: PLC0415 - see above

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return local, tf.constant(0, tf.int32)
    gathered = context.all_gather(local, axis=0)
    offset = tf.cast(context.replica_id_in_sync_group, tf.int32) * tf.shape(local)[0]
    return gathered, offset


def contrastive_loss(image_embeddings, text_embeddings, temperature, label_smoothing: float = 0.1):
    """This replica's share of ALIGN's loss; summing the shares over replicas gives the loss.

    With unit vectors x_i (images) and y_j (texts), a global batch of N pairs and temperature
    sigma, ALIGN minimises

        L = L_i2t + L_t2i,
        L_i2t = -1/N sum_i sum_j q_ij log( exp(x_i.y_j / sigma) / sum_k exp(x_i.y_k / sigma) )
        L_t2i = -1/N sum_j sum_i q_ji log( exp(y_j.x_i / sigma) / sum_k exp(y_j.x_k / sigma) )

    where q is the label-smoothed identity, q_ij = (1 - eps) [i == j] + eps / N. Each replica
    holds n = N / R rows: it scores its own rows against all N gathered columns and returns
    (its rows' terms) / N. Gradients of those shares, summed across replicas as Keras does,
    equal the one-device gradient of L on the whole batch.

    Written in keras.ops, all in float32 whatever the towers computed in: the same code is
    the loss under TensorFlow (align-train) and JAX (bench/accelerator.py).
    Returns the share and in-batch top-1 retrieval accuracies of the local rows.
    """
    image_embeddings = ops.cast(image_embeddings, "float32")
    text_embeddings = ops.cast(text_embeddings, "float32")
    all_images, offset = gather_from_replicas(image_embeddings)
    all_texts, _ = gather_from_replicas(text_embeddings)
    global_batch = ops.shape(all_images)[0]
    labels = offset + ops.arange(ops.shape(image_embeddings)[0], dtype="int32")
    targets = ops.one_hot(labels, global_batch, dtype="float32")
    targets = targets * (1.0 - label_smoothing) + label_smoothing / ops.cast(
        global_batch, "float32"
    )

    temperature = ops.cast(temperature, "float32")
    image_to_text = ops.matmul(image_embeddings, ops.transpose(all_texts)) / temperature
    text_to_image = ops.matmul(text_embeddings, ops.transpose(all_images)) / temperature
    per_row = ops.categorical_crossentropy(targets, image_to_text, from_logits=True)
    per_row += ops.categorical_crossentropy(targets, text_to_image, from_logits=True)
    share = ops.sum(per_row) / ops.cast(global_batch, "float32")

    def accuracy(logits):
        hits = ops.equal(ops.cast(ops.argmax(logits, axis=1), "int32"), labels)
        return ops.mean(ops.cast(hits, "float32"))

    return share, {
        "image_to_text_accuracy": accuracy(image_to_text),
        "text_to_image_accuracy": accuracy(text_to_image),
    }
