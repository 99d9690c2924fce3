"""Training losses of the Siamese face encoder: the triplet loss with online mining in
P people x K images batches, and the distillation losses of a student encoder.

The triplet loss of one triplet (anchor a, positive p, negative n) is
``max(0, margin + D(a, p) - D(a, n))`` with ``D`` the Euclidean distance. Two ways of
choosing the triplets inside a batch (``STRATEGIES``):

* ``"batch-hard"`` (Hermans et al. 2017): one triplet per anchor, with its farthest
  positive and its nearest negative;
* ``"semi-hard"`` (FaceNet, Schroff et al. 2015): one triplet per positive pair, with a
  negative farther than the positive but inside the margin (see
  ``semi_hard_triplet_loss`` for the exact rule and its fallback).

Every function takes TensorFlow tensors or anything ``tf.convert_to_tensor`` accepts
(numpy arrays, lists), computes in float32, returns tensors, and works inside
``tf.function``: no Python branching on tensor values. Embeddings are ``[B, D]``, labels
``[B]`` (any dtype with equality: ints or strings).

Only training code imports this module (it imports TensorFlow at the top).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import tensorflow as tf

from model_export.train_options import MINING as STRATEGIES

if TYPE_CHECKING:
    from numpy.typing import ArrayLike

    TensorLike = tf.Tensor | ArrayLike
else:
    TensorLike = Any

__all__ = [
    "STRATEGIES",
    "batch_hard_triplet_loss",
    "distance_distillation_loss",
    "embedding_distillation_loss",
    "l2_normalize",
    "mine",
    "pairwise_distances",
    "semi_hard_triplet_loss",
    "space_distillation_loss",
]


# Squared distances are floored here before the square root, so that its gradient stays
# finite when two embeddings coincide (d/dx sqrt(x) = 1 / (2 sqrt(x)) is infinite at 0).
_MIN_SQUARED_DISTANCE = 1e-12

Stats = dict[str, tf.Tensor]


def _float32(x: TensorLike) -> tf.Tensor:
    return tf.cast(tf.convert_to_tensor(x), tf.float32)


def _labels(labels: TensorLike) -> tf.Tensor:
    return tf.reshape(tf.convert_to_tensor(labels), [-1])


def l2_normalize(x: TensorLike) -> tf.Tensor:
    """``x`` divided by its L2 norm along the last axis (a zero vector stays zero)."""
    return tf.math.l2_normalize(_float32(x), axis=-1, epsilon=1e-12)


def pairwise_distances(emb: TensorLike) -> tf.Tensor:
    """``[B, D]`` embeddings -> ``[B, B]`` Euclidean distances.

    Computed from the Gram matrix (``|a|^2 - 2 a.b + |b|^2``, clipped at 0), so it needs
    O(B^2) memory, not O(B^2 D). The squared distance is floored at 1e-12 before the
    square root, which keeps the gradient finite for coinciding embeddings, and the
    diagonal is exactly 0 (masked, with no gradient through it).
    """
    emb = _float32(emb)
    gram = tf.matmul(emb, emb, transpose_b=True)
    sq_norms = tf.linalg.diag_part(gram)
    d2 = sq_norms[:, None] - 2.0 * gram + sq_norms[None, :]
    d = tf.sqrt(tf.maximum(d2, _MIN_SQUARED_DISTANCE))
    off_diagonal = tf.logical_not(tf.eye(tf.shape(emb)[0], dtype=tf.bool))
    return tf.where(off_diagonal, d, tf.zeros_like(d))


def _masks(labels: TensorLike, n: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
    """Boolean ``[B, B]`` masks: positives (same label, not itself) and negatives."""
    labels = _labels(labels)
    same = tf.equal(labels[:, None], labels[None, :])
    positive = tf.logical_and(same, tf.logical_not(tf.eye(n, dtype=tf.bool)))
    return positive, tf.logical_not(same)


def _mean_over(values: tf.Tensor, valid: tf.Tensor) -> tf.Tensor:
    """Mean of ``values`` where ``valid``; 0 when nothing is valid."""
    weights = tf.cast(valid, tf.float32)
    return tf.math.divide_no_nan(tf.reduce_sum(values * weights), tf.reduce_sum(weights))


def _triplet_loss(
    d_ap: tf.Tensor, d_an: tf.Tensor, valid: tf.Tensor, margin: tf.Tensor
) -> tuple[tf.Tensor, Stats]:
    """The mean hinge over the valid triplets, and the stats of ``batch_hard_triplet_loss``.
    Invalid entries may hold anything finite: they are masked out of values and gradients."""
    zeros = tf.zeros_like(d_ap)
    d_ap = tf.where(valid, d_ap, zeros)
    d_an = tf.where(valid, d_an, zeros)
    hinge = tf.nn.relu(margin + d_ap - d_an)
    stats = {
        "active": _mean_over(tf.cast(hinge > 0.0, tf.float32), valid),
        "valid": tf.reduce_sum(tf.cast(valid, tf.float32)),
        "d_ap": _mean_over(d_ap, valid),
        "d_an": _mean_over(d_an, valid),
    }
    return _mean_over(hinge, valid), stats


def batch_hard_triplet_loss(
    labels: TensorLike, emb: TensorLike, margin: float | tf.Tensor
) -> tuple[tf.Tensor, Stats]:
    """Batch-hard triplet loss: for each anchor its hardest positive (largest distance
    among the other embeddings of its label) and its hardest negative (smallest distance
    to another label).

    Anchors without a positive (the only image of their label in the batch) or without a
    negative (a batch of one label) are left out. Returns ``(loss, stats)``: ``loss`` is
    the mean over the valid anchors of ``max(0, margin + d_ap - d_an)``, 0 when no anchor is
    valid; ``stats`` holds float32 scalars: ``"active"`` (the fraction of valid anchors
    with a positive loss), ``"valid"`` (the number of valid anchors), ``"d_ap"`` and
    ``"d_an"`` (the mean chosen positive and negative distances over the valid anchors).
    """
    dist = pairwise_distances(emb)
    margin = _float32(margin)
    positive, negative = _masks(labels, tf.shape(dist)[0])
    d_ap = tf.reduce_max(tf.where(positive, dist, tf.zeros_like(dist)), axis=1)
    # a value no negative reaches; without gradient (it is never selected by a valid anchor)
    beyond = tf.stop_gradient(tf.reduce_max(dist)) + 1.0
    d_an = tf.reduce_min(tf.where(negative, dist, tf.fill(tf.shape(dist), beyond)), axis=1)
    valid = tf.logical_and(tf.reduce_any(positive, axis=1), tf.reduce_any(negative, axis=1))
    return _triplet_loss(d_ap, d_an, valid, margin)


def semi_hard_triplet_loss(
    labels: TensorLike, emb: TensorLike, margin: float | tf.Tensor
) -> tuple[tf.Tensor, Stats]:
    """Semi-hard triplet loss (FaceNet): one triplet per positive pair ``(a, p)``,
    ``a != p`` with the same label, whose anchor has at least one negative.

    The negative of a pair, given ``d_ap = D(a, p)`` and the anchor's negatives ``n``:

    1. semi-hard: among the negatives with ``d_ap < d_an < d_ap + margin``, the nearest
       (smallest ``d_an``);
    2. else, the easiest hard negative: among the negatives with ``d_an <= d_ap``, the
       farthest (largest ``d_an``); its loss is at least ``margin``;
    3. else every negative has ``d_an >= d_ap + margin``: the nearest negative, whose loss
       is 0 (it only enters the stats).

    This differs from tfa's ``triplet_semihard_loss`` in one case: when a pair has hard
    and easy negatives but no semi-hard one, tfa takes the nearest easy negative (loss 0),
    this takes the easiest hard one (rule 2).

    Returns ``(loss, stats)``: ``loss`` is the mean over the valid pairs of
    ``max(0, margin + d_ap - d_an)``, 0 when there is none; ``stats`` as in
    ``batch_hard_triplet_loss``, counted over pairs (``"valid"`` = the number of valid
    pairs). Memory is O(B^3).
    """
    dist = pairwise_distances(emb)
    margin = _float32(margin)
    positive, negative = _masks(labels, tf.shape(dist)[0])
    # axes [a, p, n]: the anchor's distance to its positive p and to a candidate negative n
    d_ap = dist[:, :, None]
    d_an = dist[:, None, :]
    is_negative = negative[:, None, :]
    beyond = tf.stop_gradient(tf.reduce_max(dist)) + tf.abs(margin) + 1.0  # reached by none

    semi_hard = is_negative & (d_an > d_ap) & (d_an < d_ap + margin)
    hard = is_negative & (d_an <= d_ap)
    nearest_semi_hard = tf.reduce_min(tf.where(semi_hard, d_an, beyond), axis=2)
    farthest_hard = tf.reduce_max(tf.where(hard, d_an, -1.0), axis=2)
    nearest = tf.reduce_min(tf.where(is_negative, d_an, beyond), axis=2)
    chosen = tf.where(
        tf.reduce_any(semi_hard, axis=2),
        nearest_semi_hard,
        tf.where(tf.reduce_any(hard, axis=2), farthest_hard, nearest),
    )

    valid = positive & tf.reduce_any(negative, axis=1, keepdims=True)
    return _triplet_loss(dist, chosen, valid, margin)


def mine(
    labels: TensorLike, emb: TensorLike, margin: float | tf.Tensor, strategy: str
) -> tuple[tf.Tensor, Stats]:
    """The triplet loss and stats with the mining ``strategy``, one of ``STRATEGIES``.
    Faces with a negative label have no identity (a blend of two people, ``--mixup``):
    they are neither anchors, positives nor negatives."""
    labels = tf.convert_to_tensor(labels)
    known = labels >= 0
    labels, emb = tf.boolean_mask(labels, known), tf.boolean_mask(emb, known)
    if strategy == "batch-hard":
        return batch_hard_triplet_loss(labels, emb, margin)
    if strategy == "semi-hard":
        return semi_hard_triplet_loss(labels, emb, margin)
    raise ValueError(
        f"unknown triplet mining strategy {strategy!r}: expected one of "
        + ", ".join(repr(s) for s in STRATEGIES)
    )


def embedding_distillation_loss(student: TensorLike, teacher: TensorLike) -> tf.Tensor:
    """Mean over the batch of ``|s - t|^2`` between the L2-normalised student and teacher
    embeddings (both ``[B, D]``, same D). Between 0 and 4. The teacher is a target: no
    gradient flows into it."""
    return space_distillation_loss(l2_normalize(student), l2_normalize(teacher))


def space_distillation_loss(student: TensorLike, teacher: TensorLike) -> tf.Tensor:
    """Mean over the batch of ``|s - t|^2`` between the embeddings as they are (``[B, D]``,
    same D), neither normalised: the student learns the teacher's vectors, lengths
    included (``--distill centred``: targets in the teacher's own metric space, the
    student's output compared as it is). No gradient flows into the teacher."""
    s, t = _float32(student), tf.stop_gradient(_float32(teacher))
    return tf.reduce_mean(tf.reduce_sum(tf.square(s - t), axis=-1))


def distance_distillation_loss(student: TensorLike, teacher: TensorLike) -> tf.Tensor:
    """Mean squared difference between the pairwise distance matrices of the
    L2-normalised student and teacher embeddings, over the B(B-1) off-diagonal entries
    (0 when B < 2). The embedding sizes may differ. No gradient flows into the teacher."""
    ds = pairwise_distances(l2_normalize(student))
    dt = tf.stop_gradient(pairwise_distances(l2_normalize(teacher)))
    n = tf.cast(tf.shape(ds)[0], tf.float32)
    # the diagonals are exactly 0 in both, so the sum over all entries is the off-diagonal sum
    return tf.math.divide_no_nan(tf.reduce_sum(tf.square(ds - dt)), n * (n - 1.0))
