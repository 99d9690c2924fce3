"""The training losses on tiny batches whose distances can be worked out by hand.

Most embeddings are 1-D points on a line (written as a column), so D(i, j) = |x_i - x_j|.
Labels that occur once have no positive: such points only ever serve as negatives.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")

from model_export.losses import (  # noqa: E402  (after the importorskip)
    STRATEGIES,
    batch_hard_triplet_loss,
    distance_distillation_loss,
    embedding_distillation_loss,
    l2_normalize,
    mine,
    pairwise_distances,
    semi_hard_triplet_loss,
    space_distillation_loss,
)


def line(*xs: float) -> np.ndarray:
    """Points on a line as a [B, 1] float64 array (the losses convert it to float32)."""
    return np.array(xs, dtype=np.float64)[:, None]


def values(result: tuple[tf.Tensor, dict[str, tf.Tensor]]) -> dict[str, float]:
    loss, stats = result
    return {"loss": float(loss), **{k: float(v) for k, v in stats.items()}}


def approx(expected: dict[str, float]) -> dict[str, object]:
    return {k: pytest.approx(v, abs=1e-5) for k, v in expected.items()}


# --- pairwise distances -------------------------------------------------------------------


def test_pairwise_distances() -> None:
    d = pairwise_distances([[0.0, 0.0], [3.0, 4.0], [3.0, 0.0]]).numpy()
    # |(3,4)| = 5, |(3,0)| = 3, |(3,4) - (3,0)| = 4
    assert d == pytest.approx(np.array([[0, 5, 3], [5, 0, 4], [3, 4, 0]]), abs=1e-5)
    assert d.dtype == np.float32
    assert np.all(np.diag(d) == 0.0)


def test_gradient_is_finite_for_identical_embeddings() -> None:
    emb = tf.Variable([[0.6, 0.8], [0.6, 0.8], [-0.6, 0.8], [1.0, 0.0]])  # rows 0 and 1 equal
    labels = tf.constant([0, 0, 1, 1])
    with tf.GradientTape(persistent=True) as tape:
        d = pairwise_distances(emb)
        losses = [
            tf.reduce_sum(d),
            batch_hard_triplet_loss(labels, emb, 0.5)[0],
            semi_hard_triplet_loss(labels, emb, 0.5)[0],
            distance_distillation_loss(emb, emb[::-1]),
            embedding_distillation_loss(emb, emb[::-1]),
        ]
    assert float(d[0, 1]) < 1e-3
    assert np.all(np.diag(d.numpy()) == 0.0)
    for loss in losses:
        grad = tape.gradient(loss, emb)
        assert grad is not None
        assert np.all(np.isfinite(grad.numpy())), loss


# --- batch-hard ---------------------------------------------------------------------------

# labels 0 0 0 1 1 at x = 0 1 3 4 8:
#   anchor  x  positives -> hardest  negatives -> hardest
#   0       0  1, 3      -> 3        4, 8      -> 4
#   1       1  1, 2      -> 2        3, 7      -> 3
#   2       3  3, 2      -> 3        1, 5      -> 1
#   3       4  4         -> 4        4, 3, 1   -> 1
#   4       8  4         -> 4        8, 7, 5   -> 5
# d_ap = 3 2 3 4 4 (mean 16/5 = 3.2), d_an = 4 3 1 1 5 (mean 14/5 = 2.8)
FIVE_LABELS = [0, 0, 0, 1, 1]
FIVE = line(0, 1, 3, 4, 8)


def test_batch_hard_picks_the_farthest_positive_and_the_nearest_negative() -> None:
    # margin 0.5: 0.5 + d_ap - d_an = -0.5 -0.5 2.5 3.5 -0.5 -> 0 0 2.5 3.5 0, mean 6/5
    got = values(batch_hard_triplet_loss(FIVE_LABELS, FIVE, 0.5))
    assert got == approx({"loss": 1.2, "active": 0.4, "valid": 5, "d_ap": 3.2, "d_an": 2.8})


def test_batch_hard_with_every_triplet_inside_the_margin() -> None:
    # margin 2: 2 + d_ap - d_an = 1 1 4 5 1, mean 12/5; every triplet active
    got = values(batch_hard_triplet_loss(FIVE_LABELS, FIVE, 2.0))
    assert got == approx({"loss": 2.4, "active": 1.0, "valid": 5, "d_ap": 3.2, "d_an": 2.8})


def test_batch_hard_loss_is_exactly_zero_when_all_negatives_are_far() -> None:
    # labels 0 0 1 1 at x = 0 1 10 11: every d_ap = 1, every d_an >= 9 > 1 + margin
    loss, stats = batch_hard_triplet_loss([0, 0, 1, 1], line(0, 1, 10, 11), 1.0)
    assert float(loss) == 0.0
    assert float(stats["active"]) == 0.0
    # nearest negatives: 10 (from 0), 9 (from 1), 9 (from 10), 10 (from 11): mean 9.5
    assert float(stats["d_an"]) == pytest.approx(9.5, abs=1e-5)


def test_batch_hard_leaves_out_anchors_without_a_positive() -> None:
    # labels 0 0 1 2 at x = 0 2 3 10: the two singletons have no positive.
    #   anchor 0: d_ap 2, negatives 3, 10 -> 3: 1 + 2 - 3 = 0
    #   anchor 1: d_ap 2, negatives 1, 8  -> 1: 1 + 2 - 1 = 2
    # mean over 2 anchors: loss 1, d_ap 2, d_an 2. (Counting anchor 2 with d_ap 0 would
    # give valid 3 and d_an 5/3.)
    got = values(batch_hard_triplet_loss([0, 0, 1, 2], line(0, 2, 3, 10), 1.0))
    assert got == approx({"loss": 1.0, "active": 0.5, "valid": 2, "d_ap": 2.0, "d_an": 2.0})


@pytest.mark.parametrize("labels", [[0, 0, 0], [0, 1, 2]], ids=["no negative", "no positive"])
@pytest.mark.parametrize("strategy", STRATEGIES)
def test_no_valid_triplet_gives_zero_loss(labels: list[int], strategy: str) -> None:
    got = values(mine(labels, line(0, 1, 5), 1.0, strategy))
    assert got == {"loss": 0.0, "active": 0.0, "valid": 0.0, "d_ap": 0.0, "d_an": 0.0}


def test_batch_hard_gradient() -> None:
    # labels 0 0 1 at x = 0 1 1.5, margin 1 (anchor 2 has no positive):
    #   anchor 0: 1 + (x1 - x0) - (x2 - x0) = 0.5
    #   anchor 1: 1 + (x1 - x0) - (x2 - x1) = 1.5      loss = (0.5 + 1.5) / 2 = 1
    # d/dx = ([0, 1, -1] + [-1, 2, -1]) / 2 = [-0.5, 1.5, -1]
    x = tf.Variable(line(0, 1, 1.5).astype(np.float32))
    with tf.GradientTape() as tape:
        loss, _ = batch_hard_triplet_loss([0, 0, 1], x, 1.0)
    assert float(loss) == pytest.approx(1.0, abs=1e-5)
    grad = tape.gradient(loss, x).numpy()[:, 0]
    assert grad == pytest.approx([-0.5, 1.5, -1.0], abs=1e-4)


# --- semi-hard ----------------------------------------------------------------------------
# One positive pair, a at 0 and p at 2 (d_ap = 2), and negatives with labels of their own
# (no pairs of their own). Margin 1: semi-hard means 2 < d_an < 3. Two triplets: (a, p)
# and (p, a).


def test_semi_hard_prefers_the_nearest_semi_hard_negative_over_a_harder_one() -> None:
    # negatives at x = -0.5 -2.2 -2.6 10
    #   anchor a (0): d_an = 0.5 (hard) 2.2 2.6 (semi-hard) 10 -> 2.2: 1 + 2 - 2.2 = 0.8
    #   anchor p (2): d_an = 2.5 (semi-hard) 4.2 4.6 8       -> 2.5: 1 + 2 - 2.5 = 0.5
    # loss (0.8 + 0.5) / 2 = 0.65, d_an (2.2 + 2.5) / 2 = 2.35. (Batch-hard would take 0.5.)
    labels = [0, 0, 1, 2, 3, 4]
    got = values(semi_hard_triplet_loss(labels, line(0, 2, -0.5, -2.2, -2.6, 10), 1.0))
    assert got == approx({"loss": 0.65, "active": 1.0, "valid": 2, "d_ap": 2.0, "d_an": 2.35})


def test_semi_hard_falls_back_to_the_farthest_hard_negative() -> None:
    # negatives at x = -0.5 -1.5 5.5
    #   anchor a (0): d_an = 0.5 1.5 (hard) 5.5 (easy), no semi-hard
    #                 -> the farthest hard one, 1.5: 1 + 2 - 1.5 = 1.5
    #                 (the hardest, 0.5, would give 2.5; tfa's nearest beyond d_ap, 5.5, 0)
    #   anchor p (2): d_an = 2.5 (semi-hard) 3.5 3.5          -> 2.5: 1 + 2 - 2.5 = 0.5
    # loss (1.5 + 0.5) / 2 = 1, d_an (1.5 + 2.5) / 2 = 2
    labels = [0, 0, 1, 2, 3]
    got = values(semi_hard_triplet_loss(labels, line(0, 2, -0.5, -1.5, 5.5), 1.0))
    assert got == approx({"loss": 1.0, "active": 1.0, "valid": 2, "d_ap": 2.0, "d_an": 2.0})


def test_semi_hard_with_only_easy_negatives_has_zero_loss() -> None:
    # a at 0, p at 1 (d_ap = 1), negatives at 5 and 7, margin 1: every d_an >= 2
    #   anchor a: d_an = 5 7 -> nearest 5;  anchor p: d_an = 4 6 -> nearest 4
    loss, stats = semi_hard_triplet_loss([0, 0, 1, 2], line(0, 1, 5, 7), 1.0)
    assert float(loss) == 0.0
    assert float(stats["active"]) == 0.0
    assert float(stats["valid"]) == 2.0
    assert float(stats["d_an"]) == pytest.approx(4.5, abs=1e-5)  # (5 + 4) / 2


def test_semi_hard_counts_every_positive_pair() -> None:
    # labels 0 0 0 1 at x = 0 1 3 10, margin 1: 6 pairs, negatives all beyond d_ap + 1
    #   pairs (a, p): d_ap        anchors' d_an
    #   (0,1) (0,2):  1, 3        10
    #   (1,0) (1,2):  1, 2        9
    #   (2,0) (2,1):  3, 2        7
    # mean d_ap = 12 / 6 = 2; mean d_an = (2*10 + 2*9 + 2*7) / 6 = 52/6; anchor 3 has no positive
    got = values(semi_hard_triplet_loss([0, 0, 0, 1], line(0, 1, 3, 10), 1.0))
    assert got == approx({"loss": 0.0, "active": 0.0, "valid": 6, "d_ap": 2.0, "d_an": 52 / 6})


# --- dispatch and tf.function -------------------------------------------------------------


def test_mine_dispatches() -> None:
    assert STRATEGIES == ("batch-hard", "semi-hard")
    labels, x = [0, 0, 1, 2, 3], line(0, 2, -0.5, -1.5, 5.5)
    assert float(mine(labels, x, 1.0, "semi-hard")[0]) == pytest.approx(1.0, abs=1e-5)
    # batch-hard: anchor a: 1 + 2 - 0.5 = 2.5; anchor p: 1 + 2 - 2.5 = 0.5 -> 1.5
    assert float(mine(labels, x, 1.0, "batch-hard")[0]) == pytest.approx(1.5, abs=1e-5)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_mine_leaves_out_faces_without_identity(strategy: str) -> None:
    """Label -1 (a mixed face) is no one: FIVE plus two such points, at 3.5 (it would be
    the nearest negative of the points at 3 and 4) and at 0.5 (the two would be each
    other's positive), mines exactly as FIVE alone, and no gradient reaches them."""
    labels = [0, -1, 0, 0, 1, -1, 1]
    x = tf.constant(line(0, 3.5, 1, 3, 4, 0.5, 8), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch(x)
        loss, stats = mine(labels, x, 0.5, strategy)
    assert values((loss, stats)) == approx(values(mine(FIVE_LABELS, FIVE, 0.5, strategy)))
    grad = tape.gradient(loss, x).numpy()[:, 0]
    assert grad[1] == 0.0 and grad[5] == 0.0 and np.any(grad != 0.0)


def test_mine_rejects_an_unknown_strategy() -> None:
    with pytest.raises(ValueError, match="'batch-hard', 'semi-hard'") as info:
        mine([0, 0], line(0, 1), 1.0, "hardest")
    assert "'hardest'" in str(info.value)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_losses_work_inside_tf_function(strategy: str) -> None:
    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.int32),
            tf.TensorSpec([None, None], tf.float32),
            tf.TensorSpec([], tf.float32),
        ]
    )
    def step(labels: tf.Tensor, emb: tf.Tensor, margin: tf.Tensor) -> dict[str, tf.Tensor]:
        loss, stats = mine(labels, emb, margin, strategy)
        return {
            "loss": loss,
            **stats,
            "embedding": embedding_distillation_loss(emb, 2.0 * emb),
            "distance": distance_distillation_loss(emb, emb + 1.0),
        }

    # two batch sizes through the same graph (an unknown batch size)
    for labels, x in (([0, 0, 0, 1, 1], FIVE), ([0, 0, 1, 2, 3], line(0, 2, -0.5, -1.5, 5.5))):
        margin = 0.5 if len(labels) == 5 else 1.0
        graph = step(tf.constant(labels), tf.constant(x, tf.float32), tf.constant(margin))
        eager = values(mine(labels, x, margin, strategy))
        for key, value in eager.items():
            assert float(graph[key]) == pytest.approx(value, abs=1e-5), key
        assert float(graph["embedding"]) == pytest.approx(0.0, abs=1e-6)
    assert step.experimental_get_tracing_count() == 1


# --- distillation -------------------------------------------------------------------------


def test_l2_normalize() -> None:
    got = l2_normalize([[3.0, 4.0], [0.0, 0.0]]).numpy()
    assert got == pytest.approx(np.array([[0.6, 0.8], [0.0, 0.0]]), abs=1e-6)


def test_distillation_losses_are_zero_for_identical_embeddings() -> None:
    emb = np.array([[0.3, -1.2, 0.5], [2.0, 0.1, -0.4], [0.0, 1.0, 1.0]])
    assert float(embedding_distillation_loss(emb, emb)) == pytest.approx(0.0, abs=1e-6)
    assert float(distance_distillation_loss(emb, emb)) == pytest.approx(0.0, abs=1e-6)


def test_embedding_distillation_loss() -> None:
    # normalised: student (1,0) (0,1), teacher (0,1) (0,1)
    # |s - t|^2 = 1 + 1 = 2 and 0; mean 1
    student = np.array([[1.0, 0.0], [0.0, 2.0]])
    teacher = np.array([[0.0, 1.0], [0.0, 5.0]])
    assert float(embedding_distillation_loss(student, teacher)) == pytest.approx(1.0, abs=1e-6)
    # the same after scaling either side (normalised inside)
    got = embedding_distillation_loss(3.0 * student, 0.5 * teacher)
    assert float(got) == pytest.approx(1.0, abs=1e-6)


def test_distance_distillation_loss() -> None:
    # student (1,0) (0,1) (-1,0): d01 = √2, d02 = 2,  d12 = √2
    # teacher (1,0) (0,1) (0,-1): d01 = √2, d02 = √2, d12 = 2
    # off-diagonal differences: 0, ±(2 - √2), ±(2 - √2), each entry twice (i,j) and (j,i)
    # mean over 3*2 = 6 entries: 4 (2 - √2)^2 / 6 = (2/3)(6 - 4√2) = 4 - (8/3)√2 ≈ 0.228764
    expected = 4 - 8 / 3 * math.sqrt(2)
    student = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    teacher = np.array([[1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    assert float(distance_distillation_loss(student, teacher)) == pytest.approx(expected, abs=1e-5)
    # invariant to scaling (normalised inside)
    got = distance_distillation_loss(7.0 * student, 0.1 * teacher)
    assert float(got) == pytest.approx(expected, abs=1e-5)
    # the teacher may have another embedding size: only distances are compared
    teacher_3d = np.concatenate([teacher, np.zeros((3, 1))], axis=1)
    got = distance_distillation_loss(student, teacher_3d)
    assert float(got) == pytest.approx(expected, abs=1e-5)


def test_space_distillation_loss() -> None:
    # nothing normalised: student (1,0) (0,2), teacher (0,1) (0,1)
    # |s - t|^2 = 1 + 1 = 2 and 0 + 1 = 1; mean 1.5
    student = np.array([[1.0, 0.0], [0.0, 2.0]])
    teacher = np.array([[0.0, 1.0], [0.0, 1.0]])
    assert float(space_distillation_loss(student, teacher)) == pytest.approx(1.5, abs=1e-6)
    # lengths count: the same directions at another scale are not the target
    assert float(space_distillation_loss(2.0 * teacher, teacher)) == pytest.approx(1.0, abs=1e-6)
    assert float(space_distillation_loss(teacher, teacher)) == pytest.approx(0.0, abs=1e-6)


def test_distillation_sends_no_gradient_into_the_teacher() -> None:
    student = tf.Variable([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    teacher = tf.Variable([[1.0, 0.0], [0.0, 1.0], [0.0, -1.0]])
    with tf.GradientTape(persistent=True) as tape:
        losses = [
            embedding_distillation_loss(student, teacher),
            distance_distillation_loss(student, teacher),
            space_distillation_loss(student, teacher),
        ]
    for loss in losses:
        assert tape.gradient(loss, teacher) is None
        assert tape.gradient(loss, student) is not None
