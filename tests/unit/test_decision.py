"""The decision rule (edge.decision): every threshold at its boundary, so that a `<=`
turned into `<` or a gate left out fails a test that states the behaviour."""

from __future__ import annotations

import math
import re
import sqlite3

import numpy as np
import pytest

from edge.decision import (
    DEFAULT_STRANGERS,
    ENROLL_MIN_FACE_PX,
    ENROLL_MIN_SHARPNESS,
    Candidate,
    Cohort,
    FaceQuality,
    OpenSetTable,
    Policy,
    Rule,
    cohort_scale,
    distance,
    enrollment_problem,
    gallery_size,
    rank,
)
from edge.gallery import Gallery, Sample
from edge.types import BBox, GalleryMatrix, Match

TABLE = {"margin": 0.05, "sizes": [1, 10, 100], "rates": [0.001, 0.01, 0.1],
         "tau": [[0.5, 0.6, 0.7], [0.45, 0.55, 0.65], [0.4, 0.5, 0.6]]}  # fmt: skip
SHARP = FaceQuality(size_px=100, sharpness=50.0)


def matrix(**people: list[list[float]]) -> GalleryMatrix:
    names = list(people)
    owner = [i for i, n in enumerate(names) for _ in people[n]]
    vectors = [v for n in names for v in people[n]]
    return GalleryMatrix(names, np.asarray(owner, np.intp), np.asarray(vectors, np.float32), "e")


def policy(**kw: object) -> Policy:
    base: dict[str, object] = {"metric": "euclidean", "verify_tau": 0.6, "identify_tau": 0.5}
    return Policy(**{**base, **kw})  # type: ignore[arg-type]


# --- distance and rank -------------------------------------------------------------


def test_distances_by_metric() -> None:
    a = np.array([[3.0, 4.0]], np.float32)
    b = np.array([[0.0, 0.0], [6.0, 8.0], [-3.0, -4.0]], np.float32)
    assert distance(a, b, "euclidean")[0].tolist() == pytest.approx([5.0, 5.0, 10.0])
    assert distance(a, b[1:], "cosine")[0].tolist() == pytest.approx([0.0, 2.0], abs=1e-6)
    # cosine of orthogonal vectors of any length; a zero vector does not divide by zero
    assert distance([[0.0, 2.0]], [[5.0, 0.0]], "cosine")[0, 0] == pytest.approx(1.0)
    assert np.isfinite(distance([[0.0, 0.0]], [[1.0, 0.0]], "cosine")).all()
    # identical vectors: exactly 0 (rounding never gives the square root a negative)
    v = np.array([[0.1, 0.7, 0.3]], np.float32)
    assert distance(v, v, "euclidean")[0, 0] == 0.0


def test_distances_are_float32_row_by_row_for_any_length() -> None:
    a = np.array([[0.3, 0.4], [0.0, 0.2], [6.0, 0.0]], np.float64)  # lengths 0.5, 0.2, 6
    b = np.array([[0.0, 0.1], [0.5, 0.0]], np.float64)
    for metric in ("euclidean", "cosine"):
        assert distance(a, b, metric).dtype == np.float32
    assert distance(a, b, "cosine") == pytest.approx(
        np.array([[0.2, 0.4], [0.0, 1.0], [1.0, 0.0]]), abs=1e-6
    )
    assert distance(b, a, "cosine") == pytest.approx(
        np.array([[0.2, 0.0, 1.0], [0.4, 1.0, 0.0]]), abs=1e-6
    )


def test_rank_takes_each_persons_nearest_embedding() -> None:
    gallery = Gallery(sqlite3.connect(":memory:", isolation_level=None))
    for name, vectors in (("Alice", [[0, 0], [10, 0]]), ("Bob", [[3, 0]])):
        gallery.add(
            name, [Sample(np.array(v, np.float32), "enc-1", "a.jpg", 50.0) for v in vectors]
        )
    ranked = rank(gallery.matrix(), np.array([9, 0], np.float32), "euclidean")
    assert ranked == [Candidate("Alice", 1.0), Candidate("Bob", 6.0)]
    assert rank(GalleryMatrix.empty(), np.array([9, 0], np.float32), "euclidean") == []


def test_equally_near_people_rank_in_gallery_order() -> None:
    """Ties are broken the same way every time: by the gallery's (name) order."""
    people = {f"P{i:02d}": [[1.0 if i % 3 else 0.5, 0.0]] for i in range(40)}
    ranked = rank(matrix(**people), np.array([0.0, 0.0], np.float32), "euclidean")
    halves = [c.person for c in ranked if c.distance == 0.5]
    ones = [c.person for c in ranked if c.distance == 1.0]
    assert [c.person for c in ranked] == halves + ones
    assert halves == sorted(halves) and ones == sorted(ones) and len(ones) == 26


def test_rank_uses_the_metric_it_is_given() -> None:
    m = matrix(Near=[[1.0, 0.0]], Far=[[10.0, 1.0]])
    probe = np.array([10.0, 0.0], np.float32)
    assert [c.person for c in rank(m, probe, "euclidean")] == ["Far", "Near"]
    assert [c.person for c in rank(m, probe, "cosine")] == ["Near", "Far"]


# --- the rule ------------------------------------------------------------------------


def test_rule_tau_and_margin() -> None:
    ranked = [Candidate("A", 0.30), Candidate("B", 0.35)]
    assert Rule(0.4).decide(ranked).person == "A"
    assert Rule(0.25).decide(ranked).known is False
    unsure = Rule(0.4, margin=0.1).decide(ranked)
    assert unsure.known is False and unsure.person is None and unsure.distance == 0.30
    assert Rule(0.4).decide([]).distance == math.inf


def test_a_distance_equal_to_tau_is_known() -> None:
    """same person iff d <= tau: the boundary belongs to the known side."""
    match = Rule(0.5).decide([Candidate("A", 0.5)])
    assert match == Match("A", 0.5, 0.5, True)
    assert Rule(0.5).decide([Candidate("A", 0.5000001)]).known is False


def test_a_lead_equal_to_the_margin_is_clear() -> None:
    """the nearest must beat the second by at least the margin: equal is enough."""
    ranked = [Candidate("A", 0.25), Candidate("B", 0.5)]  # exact in binary: lead 0.25
    assert Rule(0.4, margin=0.25).decide(ranked).person == "A"
    assert Rule(0.4, margin=0.2500001).decide(ranked).known is False


def test_one_person_needs_no_margin_and_an_empty_gallery_names_no_one() -> None:
    assert Rule(0.4, margin=1.0).decide([Candidate("A", 0.3)]).person == "A"
    empty = Rule(0.4, margin=0.1).decide([])
    assert empty == Match(None, math.inf, 0.4, False)


def test_a_decision_carries_the_rules_tau() -> None:
    assert Rule(0.45).decide([Candidate("A", 0.9)]) == Match(None, 0.9, 0.45, False)


# --- the open-set table --------------------------------------------------------------


def test_a_gallery_beyond_the_table_is_never_given_a_looser_tau() -> None:
    rising = OpenSetTable(0.0, (1, 10, 100), (0.01,), ((0.5,), (0.4,), (0.45,)))
    assert rising.tau_for(10**4, 0.01) == pytest.approx(0.45)  # a rise is not followed
    steep = OpenSetTable(0.0, (1, 10), (0.01,), ((0.5,), (0.1,)))
    assert steep.tau_for(10**4, 0.01) == 0.0  # nothing named, never a negative tau


def test_a_gallery_is_read_at_the_geometric_mean_of_its_embeddings_and_people() -> None:
    assert gallery_size(10, 10) == 10  # one photo each: the simulated galleries
    assert gallery_size(90, 10) == pytest.approx(30)  # 9 photos each count 3 times, not 9
    assert gallery_size(0, 0) == 0
    table = OpenSetTable.from_json(TABLE)
    one = [[1.0, 0.0]]
    ten_of_one = matrix(**{f"p{i}": one for i in range(10)})
    ten_of_ten = matrix(**{f"p{i}": one * 10 for i in range(10)})
    hundred = matrix(**{f"p{i}": one for i in range(100)})
    p = policy(open_set=table)
    assert p.for_gallery(ten_of_one).rule.tau == pytest.approx(0.55)  # read at 10
    assert p.for_gallery(ten_of_ten).rule.tau == pytest.approx(0.525, abs=1e-3)  # at 31.6
    assert p.for_gallery(hundred).rule.tau == pytest.approx(0.5)  # at 100


def test_identify_tau_tightens_as_the_gallery_grows() -> None:
    table = OpenSetTable.from_json(TABLE)
    assert table.tau_for(10, 0.01) == pytest.approx(0.55)
    assert table.tau_for(31, 0.01) == pytest.approx(0.525, abs=1e-3)  # log-interpolated
    assert table.tau_for(10**4, 10**-4) == pytest.approx(0.3)  # rate clamped, size goes on
    assert table.tau_for(1000, 0.01) == pytest.approx(0.45)  # the last step, once more
    assert table.tau_for(0, 0.01) == pytest.approx(0.6)  # an empty gallery counts as one
    assert table.tau_for(10, 0.0316) == pytest.approx(0.6, abs=1e-3)  # rates in logs too
    p = policy(open_set=table)
    small, large = p.rule(1), p.rule(100)
    assert small == Rule(pytest.approx(0.6), 0.05) and large.tau < small.tau
    assert policy(open_set=table, margin=0.0, tau=0.33).rule(100) == Rule(0.33, 0.0)
    assert policy(open_set=None, identify_tau=0.9).rule(100) == Rule(0.9, 0.0)


def test_the_table_reads_its_four_keys_and_ignores_the_figures() -> None:
    table = OpenSetTable.from_json({**TABLE, "correct_at_1pct": {"0.0": [1.0]}, "reps": 8})
    assert table.margin == 0.05 and table.sizes == (1.0, 10.0, 100.0)
    assert table.rates == (0.001, 0.01, 0.1) and table.tau[2] == (0.4, 0.5, 0.6)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"margin": -0.1}, "margin"),
        ({"margin": math.inf}, "margin"),
        ({"sizes": []}, "sizes: expected at least one"),
        ({"sizes": [1, 100, 10]}, "sizes: must be strictly increasing"),
        ({"sizes": [1, 10, 10]}, "sizes: must be strictly increasing"),
        ({"sizes": [0, 10, 100]}, "sizes: every value"),
        ({"rates": [0.001, 0.01, 1.0]}, "rates: every value"),
        ({"rates": [0.0, 0.01, 0.1]}, "rates: every value"),
        ({"tau": [[0.5, 0.6, 0.7], [0.45, 0.55, 0.65]]}, "tau: expected 3 rows of 3"),
        ({"rates": [0.01, 0.1], "tau": [[0.5, 0.6, 0.7]] * 3}, "tau: expected 3 rows of 2 "),
        ({"tau": [[0.5, 0.6], [0.45, 0.55], [0.4, 0.5]]}, "tau: expected 3 rows of 3"),
        ({"tau": [[0.5, 0.6, 0.7], [0.45, 0.0, 0.65], [0.4, 0.5, 0.6]]}, "tau: every value"),
        ({"tau": [[0.5, 0.6, 0.7], [0.45, math.nan, 0.65], [0.4, 0.5, 0.6]]}, "tau: every"),
        ({"tau": [[0.5, 0.6, 0.7], [0.45, math.inf, 0.65], [0.4, 0.5, 0.6]]}, "tau: every"),
    ],
)
def test_a_malformed_table_is_refused(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}"):
        OpenSetTable.from_json({**TABLE, **change})


def test_a_table_of_one_size_and_one_rate_is_enough() -> None:
    table = OpenSetTable(0.0, (100.0,), (0.01,), ((0.42,),))
    assert table.tau_for(3, 0.5) == pytest.approx(0.42)
    OpenSetTable(0.0, (1.0,), (0.01,), ((0.42,),))  # a gallery of one is a valid size


# --- the policy: verify, identify, overrides, gates ------------------------------------


def test_verify_uses_the_bundles_tau_unless_the_config_sets_one() -> None:
    p = policy(verify_tau=0.6)
    assert p.verify_threshold() == 0.6 and p.same(0.6) and not p.same(0.6000001)
    overridden = policy(verify_tau=0.6, tau=0.3)
    assert overridden.verify_threshold() == 0.3
    assert overridden.same(0.3) and not overridden.same(0.45)


def test_the_configs_tau_overrides_the_table_and_the_fallback() -> None:
    """[recognition] tau is the identify threshold too, whatever the gallery's size."""
    assert policy(open_set=OpenSetTable.from_json(TABLE), tau=0.2).rule(1).tau == 0.2
    assert policy(identify_tau=0.5, tau=0.2).rule(1).tau == 0.2
    assert policy(identify_tau=0.5, margin=0.07).rule(5) == Rule(0.5, 0.07)


def test_the_configs_margin_overrides_the_tables_even_at_zero() -> None:
    table = OpenSetTable.from_json(TABLE)
    assert policy(open_set=table).rule(10).margin == 0.05
    assert policy(open_set=table, margin=0.0).rule(10).margin == 0.0
    assert policy(open_set=table, margin=0.2).rule(10).margin == 0.2


def test_the_target_share_of_strangers_moves_tau() -> None:
    table = OpenSetTable.from_json(TABLE)
    assert DEFAULT_STRANGERS == 0.01
    assert policy(open_set=table).rule(10).tau == pytest.approx(0.55)
    assert policy(open_set=table, strangers_accepted=0.1).rule(10).tau == pytest.approx(0.65)


def test_a_face_too_small_is_not_looked_at() -> None:
    p = policy(min_face=40)
    assert p.looked_at(BBox(0, 0, 40, 50))  # the shorter side is exactly min_face
    assert not p.looked_at(BBox(0, 0, 39.9, 80))
    assert not p.looked_at(BBox(0, 0, 80, 39.9))
    assert policy().looked_at(BBox(0, 0, 1, 1))  # no gate by default


def test_a_face_too_blurry_is_never_named() -> None:
    p = policy(min_sharpness=10.0)
    named = Match("A", 0.3, 0.5, True)
    assert p.gate(named, FaceQuality(100, 10.0)) == named  # exactly the gate: kept
    assert p.gate(named, FaceQuality(100, 9.99)) == Match(None, 0.3, 0.5, False)
    unknown = Match(None, 0.9, 0.5, False)
    assert p.gate(unknown, FaceQuality(100, 0.0)) is unknown


def test_a_face_turned_too_far_is_never_named() -> None:
    p = policy(max_yaw=0.5)
    named = Match("A", 0.3, 0.5, True)
    assert p.gate(named, FaceQuality(100, 50.0, yaw=0.5)) == named  # exactly the gate: kept
    assert p.gate(named, FaceQuality(100, 50.0, yaw=-0.5)) == named  # either side
    assert p.gate(named, FaceQuality(100, 50.0, yaw=0.51)) == Match(None, 0.3, 0.5, False)
    assert p.gate(named, FaceQuality(100, 50.0, yaw=-0.8)) == Match(None, 0.3, 0.5, False)
    assert policy().gate(named, FaceQuality(100, 50.0, yaw=3.0)) == named  # no gate by default
    from edge.config import RecognitionConfig
    from edge.decision import DEFAULT_MAX_YAW

    assert (
        RecognitionConfig().max_yaw == DEFAULT_MAX_YAW
    )  # the config's default is the measured one


def test_the_decider_ranks_applies_the_rule_and_the_gate() -> None:
    m = matrix(Alice=[[0.0, 0.0]], Bob=[[1.0, 0.0]])
    decider = policy(identify_tau=0.5, min_sharpness=10.0).for_gallery(m)
    assert decider.rule == Rule(0.5, 0.0) and decider.gallery is m
    probe = np.array([0.2, 0.0], np.float32)
    assert decider.decide(probe, SHARP).person == "Alice"
    assert decider.decide(probe, FaceQuality(100, 1.0)).known is False
    assert decider.decide(np.array([0.5, 3.0], np.float32), SHARP).known is False


def test_the_decider_ranks_by_the_policys_metric() -> None:
    m = matrix(Near=[[1.0, 0.0]], Far=[[10.0, 1.0]])
    probe = np.array([10.0, 0.0], np.float32)
    cosine = Policy("cosine", verify_tau=0.6, identify_tau=0.5).for_gallery(m)
    assert cosine.decide(probe, SHARP) == Match("Near", 0.0, 0.5, True)
    euclid = Policy("euclidean", verify_tau=0.6, identify_tau=1.5).for_gallery(m)
    assert euclid.decide(probe, SHARP) == Match("Far", 1.0, 1.5, True)


def test_the_deciders_tau_follows_its_gallerys_size() -> None:
    table = OpenSetTable.from_json(TABLE)
    one = matrix(A=[[0.0, 0.0]])
    hundred = matrix(A=[[float(i), 0.0] for i in range(100)])
    assert policy(open_set=table).for_gallery(one).rule.tau == pytest.approx(0.6)
    # one person's 100 photos: read at sqrt(100 x 1) = 10 (gallery_size)
    assert policy(open_set=table).for_gallery(hundred).rule.tau == pytest.approx(0.55)


# --- enrollment gates ------------------------------------------------------------------


def test_enrollment_gates_at_their_boundaries() -> None:
    assert (ENROLL_MIN_FACE_PX, ENROLL_MIN_SHARPNESS) == (50, 10.0)
    assert enrollment_problem(FaceQuality(50, 10.0)) is None
    small = enrollment_problem(FaceQuality(49.6, 500.0))
    assert small == ("face too small: 50 px, at least 50 px needed (use a closer or larger photo)")
    blurry = enrollment_problem(FaceQuality(200, 9.96))
    assert blurry == ("face too blurry: sharpness 10.0, at least 10 needed (use a sharper photo)")
    assert enrollment_problem(FaceQuality(30, 30.0), min_face=20) is None
    assert enrollment_problem(FaceQuality(60, 5.0), min_sharpness=4.0) is None


# --- cohort normalization ----------------------------------------------------------


def test_cohort_scale_is_the_mean_of_the_k_nearest() -> None:
    d = np.array([[4.0, 1.0, 3.0, 2.0], [0.0, 0.0, 0.0, 5.0]])
    assert cohort_scale(d, 1).tolist() == [1.0, 1e-6]  # never 0: a divisor
    assert cohort_scale(d, 2).tolist() == pytest.approx([1.5, 1e-6])
    assert cohort_scale(d, 3).tolist() == pytest.approx([2.0, 1e-6])
    assert cohort_scale(d, 4).tolist() == pytest.approx([2.5, 1.25])
    assert cohort_scale(d[0], 2).tolist() == pytest.approx([1.5])  # one probe


def test_cohort_scale_of_a_probe() -> None:
    # cohort faces at distances 1, 2, 3 and 10 from the probe at the origin
    c = Cohort(np.array([[1, 0], [0, 2], [-3, 0], [0, -10]], np.float32), k=3)
    assert c.scale(np.array([0.0, 0.0]), "euclidean") == pytest.approx(2.0)
    assert Cohort(c.vectors, k=1).scale(np.array([0.0, 0.0]), "euclidean") == pytest.approx(1.0)


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_cohort_scale_is_exactly_the_mean_of_the_nearest_distances(metric: str) -> None:
    # the cohort is normalised once (cosine), not again for every face: the same numbers
    rng = np.random.default_rng(3)
    c = Cohort(rng.normal(size=(300, 16)).astype(np.float16), k=20)  # as cohort.npy ships
    assert c.unit.dtype == np.float32
    for _ in range(20):
        probe = rng.normal(size=16).astype(np.float32) * rng.uniform(0.1, 10)
        assert c.scale(probe, metric) == float(
            cohort_scale(distance(probe, c.vectors, metric), 20)[0]
        )
    three = Cohort(np.array([[3, 0], [0, 1], [-1, 0]], np.float32), k=2)  # cos 1, 0, -1
    assert three.scale(np.array([2.0, 0.0]), "cosine") == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("vectors", "k", "message"),
    [
        (np.zeros((3,), np.float32), 1, "matrix"),
        (np.zeros((0, 2), np.float32), 1, "matrix"),
        (np.array([[1.0, np.nan]], np.float32), 1, "finite"),
        (np.zeros((3, 2), np.float32), 0, "k must be in"),
        (np.zeros((3, 2), np.float32), 4, "k must be in"),
    ],
)
def test_cohort_is_checked(vectors: np.ndarray, k: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Cohort(vectors, k)
    Cohort(np.zeros((3, 2), np.float32), 3)  # k = every face is fine
    Cohort(np.zeros((1, 1), np.float32), 1)  # one face of one value is a cohort


def test_a_cohort_turns_distances_into_scores() -> None:
    """The same distance names a face in one domain and not in another: what counts is
    how near the cohort comes to the probe."""
    table = OpenSetTable.from_json({**TABLE, "margin": 0.0})  # tau 0.5 at 100 and 1%
    cohort = Cohort(np.array([[0.0, 1.0], [0.0, -1.0], [0.0, 3.0]], np.float32), k=2)
    scored = policy(open_set=table, cohort=cohort)
    assert scored.scored
    g = matrix(alice=[[0.4, 0.0]])
    decider = scored.for_gallery(g)
    # probe at the origin: cohort faces at 1 and 1 -> scale 1; distance 0.4 -> score 0.4
    ranked = rank(g, np.array([0.0, 0.0], np.float32), "euclidean")
    assert scored.scores(np.array([0.0, 0.0]), ranked)[0].distance == pytest.approx(0.4)
    # probe at (0, 0.5): cohort at 0.5 and 1.5 -> scale 1.0; its distance 0.64 -> 0.64
    far = np.array([0.0, 0.5], np.float32)
    assert scored.scores(far, rank(g, far, "euclidean"))[0].distance == pytest.approx(
        math.hypot(0.4, 0.5) / 1.0
    )
    tau = table.tau_for(1, DEFAULT_STRANGERS)  # 0.6 for a gallery of one
    near = np.array([0.4, 0.45], np.float32)  # 0.45 from alice; cohort at 0.69, 1.49
    scale = (math.hypot(0.4, 0.55) + math.hypot(0.4, 1.45)) / 2
    m = decider.decide(near, SHARP)
    assert m.distance == pytest.approx(0.45 / scale) and m.tau == pytest.approx(tau)
    assert m.known and m.person == "alice"  # 0.45 / 1.09 = 0.41 <= 0.6
    # the same 0.45 from alice where the cohort is near (a crowded domain): not named
    crowded = Cohort(np.array([[0.5, 0.5], [0.3, 0.5], [0.0, 3.0]], np.float32), k=2)
    strict = policy(open_set=table, cohort=crowded).for_gallery(g).decide(near, SHARP)
    assert strict.distance > tau and not strict.known
    # without the cohort: the distance itself
    assert policy(open_set=table).for_gallery(g).decide(near, SHARP).distance == pytest.approx(0.45)


def test_scores_only_with_the_bundles_table() -> None:
    """A configured tau is a distance: it turns the cohort off; so does a bundle with no
    open-set table (the cohort's scores are the table's units)."""
    cohort = Cohort(np.array([[0.0, 10.0], [0.0, -10.0]], np.float32), k=2)
    table = OpenSetTable.from_json(TABLE)
    ranked = [Candidate("alice", 1.0), Candidate("bob", 2.0)]
    probe = np.array([0.0, 0.0])
    assert policy(open_set=table, cohort=cohort).scores(probe, ranked) == [
        Candidate("alice", 0.1),
        Candidate("bob", 0.2),
    ]
    for off in (policy(open_set=table, cohort=cohort, tau=0.5), policy(cohort=cohort),
                policy(open_set=table)):  # fmt: skip
        assert not off.scored
        assert off.scores(probe, ranked) == ranked
    assert policy(open_set=table, cohort=cohort).scores(probe, []) == []


def test_cohort_scale_is_exact_on_many_faces_and_in_double_precision() -> None:
    rng = np.random.default_rng(3)
    d = rng.uniform(0.2, 2.0, (20, 200)).astype(np.float32)
    want = np.sort(d.astype(np.float64), axis=1)[:, :50].mean(axis=1)
    got = cohort_scale(d, 50)
    assert got.dtype == np.float64  # a float32 row is averaged in double precision
    assert got == pytest.approx(want, rel=1e-12)


def test_cohort_checks_say_what_is_wrong() -> None:
    with pytest.raises(ValueError, match=r"^cohort: not every value is a finite number$"):
        Cohort(np.array([[1.0, np.inf]], np.float32), 1)
    with pytest.raises(ValueError, match=r"^cohort: k must be in \[1, 3\] \(its faces\), got 4$"):
        Cohort(np.zeros((3, 5), np.float32), 4)


def test_a_cosine_cohort_scales_by_cosine_distances() -> None:
    # faces not of unit length: a euclidean scale would differ from the cosine one
    cohort = Cohort(np.array([[3.0, 0.0], [0.0, 5.0]], np.float32), k=2)
    probe = np.array([2.0, 2.0])
    cos = 1 - math.cos(math.pi / 4)
    assert cohort.scale(probe, "cosine") == pytest.approx(cos)
    table = OpenSetTable.from_json(TABLE)
    p = policy(metric="cosine", open_set=table, cohort=cohort)
    [c] = p.scores(probe, [Candidate("alice", 0.1)])
    assert c.distance == pytest.approx(0.1 / cos)


def test_the_table_interpolates_inside_and_continues_its_last_step_outside() -> None:
    # the last step spans two decades: it continues at its own slope per decade
    t = OpenSetTable(0.0, (1, 10, 1000), (0.01,), ((0.9,), (0.8,), (0.6,)))
    assert t.tau_for(1, 0.01) == pytest.approx(0.9)  # inside: read off, not extrapolated
    assert t.tau_for(100, 0.01) == pytest.approx(0.7)
    assert t.tau_for(10**4, 0.01) == pytest.approx(0.5)  # 0.1 less per decade
    one = OpenSetTable(0.0, (10.0,), (0.01,), ((0.42,),))
    assert one.tau_for(10**4, 0.01) == pytest.approx(0.42)  # one size: nothing to continue


# --- negative feedback: faces marked "not this person" ---------------------------------


def with_impostors(m: GalleryMatrix, **fakes: list[list[float]]) -> GalleryMatrix:
    owner = [m.names.index(n) for n in fakes for _ in fakes[n]]
    vectors = [v for n in fakes for v in fakes[n]]
    return GalleryMatrix(m.names, m.owner, m.vectors, m.encoder_id,
                         impostors=np.asarray(vectors, np.float32),
                         impostor_owner=np.asarray(owner, np.intp))  # fmt: skip


def test_rank_reports_each_persons_nearest_impostor() -> None:
    m = with_impostors(matrix(a=[[0.0, 0.0]], b=[[1.0, 0.0]]), a=[[0.0, 3.0], [0.0, 0.5]])
    ranked = rank(m, np.array([0.0, 0.2], np.float32), "euclidean")
    assert [c.person for c in ranked] == ["a", "b"]
    assert ranked[0].impostor == pytest.approx(0.3)  # the nearer of a's two impostor faces
    assert ranked[1].impostor == math.inf  # b has none
    assert (
        rank(matrix(a=[[0.0, 0.0]]), np.array([0.0, 0.0], np.float32), "euclidean")[0].impostor
        == math.inf
    )


def test_a_probe_nearer_to_an_impostor_is_not_named() -> None:
    rule = Rule(tau=1.0)
    assert rule.decide([Candidate("a", 0.4, impostor=0.3)]).known is False
    assert rule.decide([Candidate("a", 0.4, impostor=0.4)]).known is False  # a tie: not named
    named = rule.decide([Candidate("a", 0.4, impostor=0.41)])
    assert named.known and named.person == "a"
    assert rule.decide([Candidate("a", 0.4)]).known  # no impostor: as before


def test_impostors_are_scored_like_the_distances() -> None:
    """With a cohort the rule compares scores: the impostor distance is divided by the
    same scale, so their order (and the verdict) is the distances' order."""
    cohort = Cohort(np.array([[2.0, 0.0], [0.0, 2.0]], np.float32), k=2)
    p = policy(cohort=cohort, open_set=OpenSetTable.from_json(TABLE))
    v = np.array([0.0, 0.0], np.float32)
    [c] = p.scores(v, [Candidate("a", 0.5, impostor=0.4)])
    assert c.distance == pytest.approx(0.25) and c.impostor == pytest.approx(0.2)
    m = with_impostors(matrix(a=[[0.1, 0.0]]), a=[[0.0, 0.05]])
    assert p.for_gallery(m).decide(v, SHARP).known is False
    assert p.for_gallery(matrix(a=[[0.1, 0.0]])).decide(v, SHARP).known is True


# --- a tau per domain ----------------------------------------------------------------

BY_DOMAIN = {**TABLE, "tau_by_domain": {
    "lfw": [[0.4, 0.5, 0.6], [0.35, 0.45, 0.55], [0.3, 0.4, 0.5]],
    "cfp": [[0.6, 0.7, 0.8], [0.55, 0.65, 0.75], [0.5, 0.6, 0.7]],
}}  # fmt: skip


def test_domain_shares_count_the_k_nearest_faces_of_each_domain() -> None:
    from edge.decision import domain_shares

    d = np.array([[0.1, 0.2, 0.3, 5.0, 0.15], [9.0, 0.1, 8.0, 0.2, 7.0]])
    label = np.array([0, 1, 1, 0, 2])
    shares = domain_shares(d, 3, label, 3)
    assert np.allclose(shares, 1 / 3)  # one face of each domain among the three nearest
    assert domain_shares(d, 1, label, 3).tolist() == [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]
    assert domain_shares(d, 2, label, 3)[1].tolist() == [0.5, 0.5, 0.0]  # faces 1 and 3


def test_the_table_reads_each_domains_own_taus_and_the_blend_for_others() -> None:
    t = OpenSetTable.from_json(BY_DOMAIN)
    assert [name for name, _ in t.by_domain] == ["cfp", "lfw"]
    assert t.tau_for(100, 0.01, "lfw") == pytest.approx(0.4)
    assert t.tau_for(100, 0.01, "cfp") == pytest.approx(0.6)
    assert t.tau_for(100, 0.01) == t.tau_for(100, 0.01, "other") == pytest.approx(0.5)
    with pytest.raises(ValueError, match=r"tau_by_domain\.cfp: expected 3 rows"):
        OpenSetTable.from_json({**BY_DOMAIN, "tau_by_domain": {"cfp": [[0.5, 0.6, 0.7]]}})
    with pytest.raises(ValueError, match="positive"):
        OpenSetTable.from_json({**BY_DOMAIN, "tau_by_domain": {"cfp": [[0.0] * 3] * 3}})


def test_a_probe_is_judged_by_the_taus_of_its_nearest_cohort_faces_domains() -> None:
    """LFW's cohort faces lie around (0, 1), CFP's around (0, -1); a probe near LFW's gets
    LFW's tau, one between them half of each, and the same distance to alice is named
    under CFP's looser tau and not under LFW's."""
    faces = np.array([[0.0, 1.0], [0.1, 1.0], [0.0, -1.0], [0.1, -1.0]], np.float32)
    cohort = Cohort(faces, k=2, label=np.array([1, 1, 0, 0]), domains=("cfp", "lfw"))
    p = policy(open_set=OpenSetTable.from_json(BY_DOMAIN), cohort=cohort)
    assert p.domain_taus(100).tolist() == pytest.approx([0.6, 0.4])  # cfp, lfw
    assert p.rule(100, np.array([0.0, 1.0])).tau == pytest.approx(0.4)
    # half of each: the tau at which half LFW's share named and half CFP's make 1%:
    # 0.5 * 10^(-2 + 10 (t - 0.4)) + 0.5 * 0.001 = 0.01, nearer LFW's (stricter) tau
    assert p.rule(100, np.array([0.5, 0.5])).tau == pytest.approx(0.4 + np.log10(1.9) / 10, abs=1e-3)  # fmt: skip
    assert p.rule(100).tau == pytest.approx(0.5)  # no probe: the blend
    g = matrix(alice=[[2.0, 0.0]])
    near_lfw, near_cfp = np.array([1.5, 0.8], np.float32), np.array([1.5, -0.8], np.float32)
    lfw, cfp = (p.for_gallery(g).decide(v, SHARP) for v in (near_lfw, near_cfp))
    assert lfw.tau == pytest.approx(0.5) and cfp.tau == pytest.approx(0.7)  # at size 1
    assert lfw.distance == pytest.approx(cfp.distance)  # the same score, mirrored
    assert 0.5 < lfw.distance <= 0.7 and not lfw.known and cfp.person == "alice"
    # a configured tau, or a cohort without labels: one tau for every probe
    assert policy(open_set=p.open_set, cohort=cohort, tau=0.3).rule(100, np.array([1.0, 0.0])).tau == 0.3  # fmt: skip
    plain = policy(open_set=p.open_set, cohort=Cohort(faces, k=2))
    assert plain.domain_taus(100) is None and plain.for_gallery(g).decide(near_cfp, SHARP).tau == pytest.approx(0.6)  # fmt: skip


def test_cohort_domain_labels_are_checked() -> None:
    faces = np.zeros((3, 2), np.float32)
    with pytest.raises(ValueError, match="one domain label per face"):
        Cohort(faces, 1, np.array([0, 1]), ("a", "b"))
    with pytest.raises(ValueError, match="one domain label per face"):
        Cohort(faces, 1, np.array([0.0, 1.0, 0.0]), ("a", "b"))
    with pytest.raises(ValueError, match=r"in \[0, 2\)"):
        Cohort(faces, 1, np.array([0, 1, 2]), ("a", "b"))


def test_domain_shares_are_those_of_the_k_nearest_on_many_faces() -> None:
    """Against a sort, on rows of 200 faces and several k: exactly the k nearest faces'
    domains, whatever the distances' dtype."""
    from edge.decision import domain_shares

    rng = np.random.default_rng(5)
    d = rng.uniform(0.2, 2.0, (20, 200)).astype(np.float32)
    label = rng.integers(0, 3, 200)
    for k in (1, 2, 7, 20, 50):
        nearest = label[np.argsort(d.astype(np.float64), axis=1)[:, :k]]
        want = np.stack([(nearest == j).mean(axis=1) for j in range(3)], axis=1)
        assert np.array_equal(domain_shares(d, k, label, 3), want), k
    assert domain_shares(d[0], 5, label, 3).shape == (1, 3)  # one row of distances


def test_a_cosine_probes_domain_is_read_by_cosine_and_faces_of_any_length() -> None:
    """The shares and scale of a cosine bundle's probe come from cosine distances, for
    faces and probes shorter than unit length too (a Euclidean reading picks the other
    domain here), and the mixed rule keeps the table's margin."""
    faces = np.array([[0.05, 0.0], [0.04, 0.01], [0.0, 0.3], [0.01, 0.3]], np.float32)
    cohort = Cohort(faces, k=2, label=np.array([0, 0, 1, 1]), domains=("cfp", "lfw"))
    probe = np.array([0.0, 0.01], np.float32)  # short, and along LFW's faces
    scale, shares = cohort.near(probe, "cosine")
    assert shares is not None and shares.tolist() == [0.0, 1.0]
    unit = faces / np.linalg.norm(faces, axis=1, keepdims=True)
    cos = 1 - unit @ (probe / np.linalg.norm(probe))
    assert scale == pytest.approx(np.sort(cos)[:2].mean(), rel=1e-5)
    assert cohort.near(probe, "euclidean")[1].tolist() == [1.0, 0.0]  # nearer CFP's
    p = policy(metric="cosine", open_set=OpenSetTable.from_json(BY_DOMAIN), cohort=cohort)
    g = matrix(alice=[[0.0, 1.0]], bob=[[1.0, 0.0]])
    m = p.for_gallery(g).decide(probe, SHARP)
    assert m.tau == pytest.approx(p.rule(gallery_size(2, 2), np.array([0.0, 1.0])).tau)
    assert m.distance == pytest.approx(0.0, abs=1e-6) and m.person == "alice"
    assert p.rule(10, np.array([0.5, 0.5])).margin == 0.05
    assert policy(open_set=p.open_set, cohort=cohort, margin=0.2).rule(10, np.array([1.0, 0.0])).margin == 0.2  # fmt: skip


def test_a_table_whose_domains_are_not_an_object_is_refused() -> None:
    with pytest.raises(ValueError, match=r"^tau_by_domain: expected an object of domain -> taus$"):
        OpenSetTable.from_json({**TABLE, "tau_by_domain": [[0.5]]})


def test_a_cosine_gallerys_impostor_faces_are_measured_by_cosine() -> None:
    m = with_impostors(matrix(a=[[1.0, 0.0]]), a=[[0.0, 5.0]])
    [c] = rank(m, np.array([0.0, 1.0], np.float32), "cosine")
    assert c.impostor == pytest.approx(0.0, abs=1e-6)  # the same direction: cosine 0 (not 4)
    assert c.distance == pytest.approx(1.0)


def test_the_domains_taus_only_where_the_table_has_them_and_no_tau_is_set() -> None:
    faces = np.array([[0.0, 1.0], [0.0, -1.0]], np.float32)
    labelled = Cohort(faces, k=1, label=np.array([0, 1]), domains=("cfp", "lfw"))
    assert policy(open_set=OpenSetTable.from_json(TABLE), cohort=labelled).domain_taus(100) is None  # fmt: skip
    own = OpenSetTable.from_json(BY_DOMAIN)
    assert policy(open_set=own, cohort=labelled, tau=0.3).domain_taus(100) is None
    assert policy(open_set=own, cohort=labelled).domain_taus(100) is not None
    # a configured tau keeps the table's margin unless a margin is configured too
    assert policy(open_set=own, cohort=labelled, tau=0.3).rule(100) == Rule(0.3, 0.05)


def test_domains_named_without_labels_leave_every_face_the_averaged_tau() -> None:
    """A manifest may list domains without the file of each face's (a hand edit): no
    face then has shares, and each is judged by the averaged tau, never a crash."""
    faces = np.array([[0.0, 1.0], [0.0, -1.0]], np.float32)
    unlabelled = Cohort(faces, k=1, domains=("cfp", "lfw"))
    p = policy(open_set=OpenSetTable.from_json(BY_DOMAIN), cohort=unlabelled)
    scale, shares = unlabelled.near(np.array([0.0, 0.5], np.float32), "euclidean")
    assert shares is None and scale == pytest.approx(0.5)
    m = p.for_gallery(matrix(alice=[[0.0, 0.6]])).decide(np.array([0.0, 0.5], np.float32), SHARP)
    assert m.tau == pytest.approx(p.rule(1).tau) and m.known


def test_a_mixed_probes_tau_keeps_the_mixed_share_of_strangers_named_at_the_target() -> None:
    """On a table of real shape (six sizes, seven rates): a whole share of one domain
    gives that domain's own tau at any size and target inside the rates; a mixed
    probe's tau lies between the domains' and, read back through each domain's taus,
    names the target share of strangers; it rises with the target and with the
    looser domain's share; rows are decided alike alone or together."""
    rates = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1]
    sizes = [1, 3, 10, 30, 100, 300]
    lfw = [[0.9 - 0.03 * i + 0.05 * j for j in range(7)] for i in range(6)]
    cfp = [[0.8 - 0.04 * i + 0.04 * j + 0.01 * j * j for j in range(7)] for i in range(6)]
    t = OpenSetTable.from_json({"margin": 0.1, "sizes": sizes, "rates": rates, "tau": lfw,
                                "tau_by_domain": {"lfw": lfw, "cfp": cfp}})  # fmt: skip
    domains = ("cfp", "lfw")
    for size in (1, 7.5, 100, 1000):
        for target in (0.0015, 0.01, 0.03, 0.08):
            own = [t.tau_for(size, target, d) for d in domains]
            for i in range(2):
                one = np.eye(2)[i]
                assert t.mixed_tau(size, target, domains, one)[0] == pytest.approx(own[i], abs=1e-9)
            taus = t.mixed_tau(size, target, domains, np.array([[0.2, 0.8], [0.5, 0.5], [0.9, 0.1]]))  # fmt: skip
            assert min(own) - 1e-9 <= taus.min() and taus.max() <= max(own) + 1e-9
            looser = int(np.argmax(own))
            assert np.all(np.diff(taus if looser == 0 else taus[::-1]) >= -1e-12)
            for row, tau in zip([[0.2, 0.8], [0.5, 0.5], [0.9, 0.1]], taus, strict=True):
                named = [10 ** np.interp(tau, t.by_rate(size, d), np.log10(rates)) for d in domains]
                assert float(np.dot(row, named)) == pytest.approx(target, rel=0.02)
                assert t.mixed_tau(size, target, domains, np.array(row))[0] == pytest.approx(
                    tau, abs=1e-12
                )
        half = [t.mixed_tau(size, r, domains, np.array([0.5, 0.5]))[0] for r in rates]
        assert np.all(np.diff(half) >= 0)


def test_a_target_outside_the_tables_rates_is_clamped_for_a_mixed_probe_too() -> None:
    """As ``tau_for`` clamps it: below the smallest rate the strictest taus, above the
    largest the loosest each domain has; a whole share of one domain still gives its own
    (not the looser domain's, though every point past its last tau names the top rate)."""
    from edge.open_set import _named

    t = OpenSetTable.from_json(BY_DOMAIN)
    domains, half = ("cfp", "lfw"), np.array([0.5, 0.5])
    for size in (1, 30, 100, 500):
        for low, high in ((1e-5, 0.001), (0.1, 0.3)):
            assert t.mixed_tau(size, low, domains, half)[0] == pytest.approx(t.mixed_tau(size, high, domains, half)[0])  # fmt: skip
            for i, d in enumerate(domains):
                one = np.eye(2)[i]
                assert t.mixed_tau(size, low, domains, one)[0] == pytest.approx(t.tau_for(size, low, d))  # fmt: skip
                assert t.mixed_tau(size, high, domains, one)[0] == pytest.approx(t.tau_for(size, high, d))  # fmt: skip
    assert t.mixed_tau(100, 0.3, domains, np.array([0.0, 1.0]))[0] == pytest.approx(0.5)
    assert t.mixed_tau(100, 0.3, domains, half)[0] == pytest.approx(0.7)
    grid, named = _named(t, 100.0, domains)  # shared by every probe of the gallery
    assert not grid.flags.writeable and not named.flags.writeable
