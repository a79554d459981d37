"""ALIGN's contrastive loss: normalised softmax both ways over the global batch's negatives."""

from __future__ import annotations

import tensorflow as tf


def gather_from_replicas(local: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Concatenates every replica's rows (with gradients); returns (global rows, my offset).

    ``ReplicaContext.all_gather`` is differentiable: its gradient all-reduces the upstream
    gradient and hands each replica its own slice, so a replica's embeddings get the gradient
    of every replica's loss terms in which they serve as negatives.
    """
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return local, tf.constant(0, tf.int32)
    gathered = context.all_gather(local, axis=0)
    offset = tf.cast(context.replica_id_in_sync_group, tf.int32) * tf.shape(local)[0]
    return gathered, offset


def contrastive_loss(
    image_embeddings: tf.Tensor,
    text_embeddings: tf.Tensor,
    temperature: tf.Tensor,
    label_smoothing: float = 0.1,
) -> tuple[tf.Tensor, dict[str, tf.Tensor]]:
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

    Returns the share and in-batch top-1 retrieval accuracies of the local rows.
    """
    all_images, offset = gather_from_replicas(image_embeddings)
    all_texts, _ = gather_from_replicas(text_embeddings)
    global_batch = tf.shape(all_images)[0]
    labels = offset + tf.range(tf.shape(image_embeddings)[0])
    targets = tf.one_hot(labels, global_batch, dtype=tf.float32)
    targets = targets * (1.0 - label_smoothing) + label_smoothing / tf.cast(
        global_batch, tf.float32
    )

    temperature = tf.cast(temperature, tf.float32)
    image_to_text = tf.matmul(image_embeddings, all_texts, transpose_b=True) / temperature
    text_to_image = tf.matmul(text_embeddings, all_images, transpose_b=True) / temperature
    per_row = tf.nn.softmax_cross_entropy_with_logits(targets, image_to_text)
    per_row += tf.nn.softmax_cross_entropy_with_logits(targets, text_to_image)
    share = tf.reduce_sum(per_row) / tf.cast(global_batch, tf.float32)

    def accuracy(logits):
        hits = tf.equal(tf.argmax(logits, axis=1, output_type=tf.int32), labels)
        return tf.reduce_mean(tf.cast(hits, tf.float32))

    return share, {
        "image_to_text_accuracy": accuracy(image_to_text),
        "text_to_image_accuracy": accuracy(text_to_image),
    }
