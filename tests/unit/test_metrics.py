from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from model_export.data import DataError, pair_people, read_pairs
from model_export.metrics import auc, best_threshold, kfold_accuracy, roc, tar_at_far


def test_best_threshold_separates_perfectly() -> None:
    d = np.array([0.1, 0.2, 0.3, 0.7, 0.8])
    same = np.array([True, True, True, False, False])
    tau = best_threshold(d, same)
    assert 0.3 <= tau < 0.7


def test_kfold_threshold_comes_from_the_other_folds() -> None:
    # fold 0 alone would want tau ~0.45; folds 1-2 want ~0.25, so fold 0 loses a pair
    d = np.array([0.4, 0.5, 0.2, 0.3, 0.2, 0.3])
    same = np.array([True, False, True, False, True, False])
    folds = np.array([0, 0, 1, 1, 2, 2])
    result = kfold_accuracy(d, same, folds)
    assert result.fold_accuracies[0] == pytest.approx(0.5)
    assert result.fold_accuracies[1:] == [1.0, 1.0]
    assert result.accuracy_mean == pytest.approx(5 / 6)


def test_tar_at_far_allows_only_the_given_fraction_of_impostors() -> None:
    imp = np.linspace(0.5, 1.5, 1000)  # 1000 impostors
    gen = np.array([0.3, 0.49, 0.5005, 0.6])
    d = np.concatenate([gen, imp])
    same = np.concatenate([np.ones(4, bool), np.zeros(1000, bool)])
    tar, tau = tar_at_far(d, same, far=1e-3)  # one impostor may pass: 0.5 but not 0.501
    assert 0.5 <= tau < imp[1]
    assert tar == pytest.approx(3 / 4)


def test_auc_and_roc() -> None:
    d = np.array([0.1, 0.2, 0.3, 0.4])
    same = np.array([True, False, True, False])
    assert auc(d, same) == pytest.approx(0.75)  # pairs (g,i): (0.1<0.2)(0.1<0.4)(0.3>0.2)(0.3<0.4)
    assert auc(np.array([0.5, 0.5]), np.array([True, False])) == pytest.approx(0.5)
    far, tar = roc(d, same)
    assert far[-1] == tar[-1] == 1.0 and far[0] == tar[0] == 0.0


def test_read_pairs(tmp_path: Path) -> None:
    f = tmp_path / "pairs.txt"
    f.write_text("2\t1\nA\t1\t2\nB\t1\tC\t3\nD\t2\t4\nE\t1\tF\t1\n")
    pairs = read_pairs(f, tmp_path / "lfw")
    assert [p.fold for p in pairs] == [0, 0, 1, 1]
    assert pairs[0].same and not pairs[1].same
    assert pairs[1].right == tmp_path / "lfw" / "C" / "C_0003.jpg"
    assert pair_people(pairs) == {"A", "B", "C", "D", "E", "F"}
    f.write_text("2\t1\nA\t1\t2\n")
    with pytest.raises(DataError, match="expected 4 pairs"):
        read_pairs(f, tmp_path)


def test_real_pairs_file_has_the_lfw_shape(face_data: Path) -> None:
    pairs = read_pairs(face_data / "lfw_protocol" / "pairs_dev.txt", face_data / "lfw")
    assert len(pairs) == 3000 and sum(p.same for p in pairs) == 1500
    assert all(p.left.is_file() and p.right.is_file() for p in pairs[:50])


def test_single_fold_chooses_tau_on_itself() -> None:
    d = np.array([0.1, 0.9, 0.2, 0.8])
    same = np.array([True, False, True, False])
    result = kfold_accuracy(d, same, np.zeros(4, int))
    assert result.accuracy_mean == 1.0 and 0.2 <= result.fold_thresholds[0] < 0.8


def test_the_open_set_table_needs_enough_strangers() -> None:
    import pytest

    from model_export.impostors import MIN_PEOPLE, open_set_table

    rng = np.random.default_rng(0)
    first = rng.normal(size=(MIN_PEOPLE - 1, 8)).astype(np.float32)
    with pytest.raises(ValueError, match=f"at least {MIN_PEOPLE}"):
        open_set_table(first, first[:20] + 0.01, "euclidean")
    first = rng.normal(size=(MIN_PEOPLE + 40, 8)).astype(np.float32)
    table = open_set_table(first, first[:20] + 0.05, "euclidean", reps=2)
    assert table["sizes"] == [1, 3, 10, 30] and table["people"] == MIN_PEOPLE + 40
    assert all(len(row) == len(table["rates"]) for row in table["tau"])


def test_cohort_scales_leave_out_the_probe_and_the_gallery() -> None:
    from model_export.impostors import scales_outside

    cohort = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [4.0, 0.0]], np.float32)
    d = np.linalg.norm(cohort[:, None] - cohort[None], axis=2).astype(np.float64)
    # probe i is cohort face i: face 0's nearest others are at 1 and 2 (not itself, at 0)
    none = np.array([], np.intp)
    scales = scales_outside(d, np.arange(4), none, 2)
    assert scales.tolist() == pytest.approx([1.5, (1 + 5**0.5) / 2, (2 + 5**0.5) / 2, 3.5])
    # face 1 enrolled in the simulated gallery: not in the cohort of strangers 0 and 2
    assert scales_outside(d, np.array([0, 2]), np.array([1]), 2).tolist() == pytest.approx(
        [3.0, (2 + 20**0.5) / 2]
    )


def test_an_open_set_table_in_cohort_scores_holds_when_a_domain_scales_every_distance() -> None:
    """A camera where every distance is 3x smaller (everyone alike): a table in distances
    moves with it (the device's tau would name most strangers there), one in cohort scores
    does not."""
    from model_export.impostors import MIN_PEOPLE, open_set_table

    rng = np.random.default_rng(1)
    first = rng.normal(size=(MIN_PEOPLE + 40, 8)).astype(np.float32)
    second = first[:30] + rng.normal(scale=0.3, size=(30, 8)).astype(np.float32)
    plain = open_set_table(first, second, "euclidean", reps=2)
    small = open_set_table(first / 3, second / 3, "euclidean", reps=2)
    assert np.allclose(np.asarray(small["tau"]) * 3, plain["tau"], rtol=1e-4)
    scored = open_set_table(first, second, "euclidean", reps=2, cohort=first, cohort_k=10)
    scored_small = open_set_table(
        first / 3, second / 3, "euclidean", reps=2, cohort=first / 3, cohort_k=10
    )
    assert np.allclose(scored["tau"], scored_small["tau"], rtol=1e-4)
    assert not np.allclose(scored["tau"], plain["tau"], rtol=0.05)  # in other units
    assert "cohort" in scored["score"] and "score" not in plain


def test_an_open_set_table_is_made_consistent_never_looser() -> None:
    from model_export.impostors import monotone

    # a larger gallery never gets a larger tau; a smaller rate never a larger one
    rows = [[0.5, 0.4, 0.7], [0.6, 0.3, 0.65]]
    assert np.allclose(monotone(rows), [[0.4, 0.4, 0.7], [0.3, 0.3, 0.65]])


def test_a_second_domain_is_blended_and_continued_beyond_its_people() -> None:
    from model_export.impostors import blend

    reference = {1: [1.0, 1.1], 10: [0.8, 0.9], 30: [0.7, 0.8], 100: [0.6, 0.7]}
    other = {1: [0.9, 1.0], 10: [0.6, 0.8], 30: [0.6, 0.6]}
    out = blend(reference, other)
    assert out[1] == pytest.approx([0.95, 1.05]) and out[10] == pytest.approx([0.7, 0.85])
    # size 100: the other domain's mean gap over sizes 10 and 30 (-0.15, -0.15) continues
    assert out[100] == pytest.approx([0.6 - 0.075, 0.7 - 0.075])


def test_galleries_are_simulated_within_each_domain() -> None:
    """Domain B is a camera where everyone looks alike (every distance halved): its
    galleries are simulated among its own people, and the table lies between the two
    domains' own tables."""
    from model_export.impostors import MIN_PEOPLE, RATES, open_set_table

    rng = np.random.default_rng(3)
    n = MIN_PEOPLE + 60
    a = rng.normal(size=(n, 8)).astype(np.float32)
    b = (rng.normal(size=(n, 8)) * 0.5).astype(np.float32)
    a2 = a[:40] + rng.normal(scale=0.3, size=(40, 8)).astype(np.float32)
    b2 = b[:40] + rng.normal(scale=0.15, size=(40, 8)).astype(np.float32)
    only_a = open_set_table(a, a2, "euclidean", reps=2)
    only_b = open_set_table(b, b2, "euclidean", reps=2)
    # the people with a second photo first, as open_set_faces orders them
    first = np.concatenate([a[:40], b[:40], a[40:], b[40:]])
    second = np.concatenate([a2, b2])
    domains = np.array(["a"] * 40 + ["b"] * 40 + ["a"] * (n - 40) + ["b"] * (n - 40))
    both = open_set_table(first, second, "euclidean", reps=2, domains=domains)
    assert both["domains"]["b"]["people"] == n
    assert both["domains"]["a"]["sizes"] == [1, 3, 10, 30]
    assert both["domains"]["b"]["sizes"] == [1, 3, 10, 30, 100]  # beyond a's: not kept
    j, size = RATES.index(0.01), both["sizes"].index(30)
    tau = both["tau"][size][j]
    assert only_b["tau"][size][j] < tau < only_a["tau"][size][j]
    assert both["sizes"] == only_a["sizes"]  # the reference (most people, first: a) sets them


def test_a_further_photo_leaves_its_own_person_out_of_its_cohort() -> None:
    from model_export.impostors import scales_outside

    cohort = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [4.0, 0.0]], np.float32)
    probe = np.array([[0.9, 0.1]], np.float32)  # another photo of person 1, row 0 of d
    d = np.linalg.norm(probe[:, None] - cohort[None], axis=2).astype(np.float64)
    none = np.array([], np.intp)
    mine = scales_outside(d, np.array([0]), none, 2, own=np.array([1]))
    assert mine.tolist() == pytest.approx([(d[0, 0] + d[0, 2]) / 2])  # faces 0 and 2
    assert scales_outside(d, np.array([0]), none, 2).tolist() == pytest.approx(
        [(d[0, 1] + d[0, 2]) / 2]  # without own: row 0 is taken for person 0
    )


def test_further_photos_are_searched_as_strangers_outside_their_gallery() -> None:
    """A person's further photos are strangers' searches only while that person is not
    enrolled; with none, the table is what it was."""
    from model_export.impostors import MIN_PEOPLE, Extra, _simulate, open_set_table

    rng = np.random.default_rng(5)
    n = MIN_PEOPLE + 20
    first = rng.normal(size=(n, 8)).astype(np.float32)
    second = first[:30] + rng.normal(scale=0.3, size=(30, 8)).astype(np.float32)
    owner = np.repeat(np.arange(n), 2)
    further = first[owner] + rng.normal(scale=0.3, size=(2 * n, 8)).astype(np.float32)
    plain = open_set_table(first, second, "euclidean", reps=2)
    empty = (np.zeros((0, 8), np.float32), np.zeros(0, np.intp))
    assert open_set_table(first, second, "euclidean", reps=2, more=empty)["tau"] == plain["tau"]
    more = open_set_table(first, second, "euclidean", reps=2, more=(further, owner))
    assert more["tau"] != plain["tau"] and more["sizes"] == plain["sizes"]
    d_first = np.linalg.norm(first[:, None] - first[None], axis=2).astype(np.float64)
    d_second = np.linalg.norm(second[:, None] - first[None], axis=2).astype(np.float64)
    d_more = np.linalg.norm(further[:, None] - first[None], axis=2).astype(np.float64)
    members = np.arange(n)
    extra = Extra(d_more, d_more, owner)
    sims = [_simulate(d_first, d_second, None, members, 30, [10], 1, np.random.default_rng(0), e)
            for e in (None, extra)]  # fmt: skip
    # n - 10 strangers' first photos, and then their two further photos each
    assert len(sims[0][10]["s1"]) == n - 10
    assert len(sims[1][10]["s1"]) == 3 * (n - 10)


def test_a_cohort_of_several_photos_each_leaves_out_every_photo_of_a_left_out_person() -> None:
    """With ``owner`` (each cohort face's person), a gallery's people and the probe's own
    person lose all their faces, not only the one at their index."""
    from model_export.impostors import scales_outside

    cohort = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 2.0], [4.0, 0.0], [1.1, 0.0]], np.float32)
    owner = np.array([0, 1, 2, 3, 1])  # face 4 is a second photo of person 1
    probe = np.array([[0.0, 0.1]], np.float32)  # a stranger's photo, person 0
    d = np.linalg.norm(probe[:, None] - cohort[None], axis=2).astype(np.float64)
    gallery = np.array([1])
    left = scales_outside(d, np.array([0]), gallery, 2, owner=owner)
    assert left.tolist() == pytest.approx([(d[0, 2] + d[0, 3]) / 2])  # faces 1 and 4 out
    by_index = scales_outside(d, np.array([0]), gallery, 2)  # the old reading: face 1 only
    assert by_index.tolist() == pytest.approx([(d[0, 2] + d[0, 4]) / 2])


def test_the_build_ships_every_photo_it_fitted_on_as_the_cohort(tmp_path: Path) -> None:
    from model_export.impostors import COHORT_K, MIN_PEOPLE
    from model_export.open_set import COHORT_FILE, fit_into

    rng = np.random.default_rng(7)
    n = MIN_PEOPLE + 10
    first = rng.normal(size=(n, 8)).astype(np.float32)
    second = first[:20] + rng.normal(scale=0.3, size=(20, 8)).astype(np.float32)
    owner = np.repeat(np.arange(20, 40), 3)
    further = first[owner] + rng.normal(scale=0.3, size=(60, 8)).astype(np.float32)
    manifest: dict = {"tau": {}}
    fit_into(tmp_path, manifest, first, second, "euclidean", more=(further, owner))
    cohort = np.load(tmp_path / COHORT_FILE)
    assert cohort.shape == (n + 20 + 60, 8) and cohort.dtype == np.float16
    # the first photos first (edge.manifest_checks reads them as different people)
    assert np.allclose(cohort[:n], first, atol=1e-2)
    assert manifest["cohort"]["faces"] == n + 80 and manifest["cohort"]["people"] == n
    assert manifest["cohort"]["k"] == COHORT_K
    assert "60 further photos" in manifest["identify"]["people_from"]


def test_the_build_ships_each_cohort_faces_domain_and_each_domains_taus(tmp_path: Path) -> None:
    """Two domains: the cohort's faces carry their person's domain, the table a tau per
    domain beside the blend (CFP's sizes past its own continued by its gap to LFW), and
    the blend lies between them."""
    from edge.decision import OpenSetTable
    from model_export.open_set import DOMAIN_FILE, fit_into

    rng = np.random.default_rng(3)
    n = 170  # people 0-9 and 20-59 CFP (50), the others LFW (120)
    domains = np.array(["cfp" if i < 10 or 20 <= i < 60 else "lfw" for i in range(n)])
    first = rng.normal(size=(n, 8)).astype(np.float32)
    first[domains == "cfp"] *= 0.7  # CFP's faces crowd together
    second = first[:20] + rng.normal(scale=0.3, size=(20, 8)).astype(np.float32)
    manifest: dict = {"tau": {}}
    fit_into(tmp_path, manifest, first, second, "euclidean", domains)
    label = np.load(tmp_path / DOMAIN_FILE)
    assert manifest["cohort"]["domains"] == ["cfp", "lfw"]
    assert manifest["cohort"]["domain_file"] == DOMAIN_FILE and label.shape == (n + 20,)
    assert label[:n].tolist() == [0 if d == "cfp" else 1 for d in domains]
    assert label[n:].tolist() == label[:20].tolist()  # a second photo is its person's
    table = OpenSetTable.from_json(manifest["identify"])
    own = dict(table.by_domain)
    assert set(own) == {"cfp", "lfw"}
    assert manifest["identify"]["domains"]["cfp"]["sizes"] == [1, 3, 10]  # 50 - 30 strangers
    blend, lfw, cfp = (np.asarray(t) for t in (table.tau, own["lfw"], own["cfp"]))
    assert blend.shape == lfw.shape == cfp.shape == (len(table.sizes), len(table.rates))
    lo, hi = np.minimum(lfw, cfp), np.maximum(lfw, cfp)
    assert (blend >= lo - 1e-4).all() and (blend <= hi + 1e-4).all()
    assert not np.allclose(lfw, cfp)
    # one domain: no labels and no taus per domain
    one: dict = {"tau": {}}
    (tmp_path / "one").mkdir()
    fit_into(tmp_path / "one", one, first, second, "euclidean")
    assert "domains" not in one["cohort"] and "tau_by_domain" not in one["identify"]
    assert not (tmp_path / "one" / DOMAIN_FILE).exists()


def test_a_lower_bound_tau_is_stricter_where_a_domain_has_few_strangers() -> None:
    """Resampled by person, the 1% tau of a few dozen strangers' people moves far below its
    quantile; that of a thousand barely moves."""
    from model_export.impostors import bootstrap_taus
    from model_export.metrics import threshold_at_far

    rng = np.random.default_rng(2)
    values = rng.normal(size=10_000)
    who = np.arange(len(values)) // 5  # five searches per person
    gaps = []
    for n in (10_000, 300):
        point = threshold_at_far(values[:n], 0.01)
        bound = bootstrap_taus(values[:n], who[:n], [0.01], 0.9, np.random.default_rng(0))[0]
        assert bound < point
        gaps.append(point - bound)
    assert gaps[1] > 4 * gaps[0]
    # the edges keep threshold_at_far's reading: no stranger accepted, or every one
    edges = bootstrap_taus(np.arange(1.0, 11.0), np.arange(10), [0.0, 1.0], 1.0,
                           np.random.default_rng(0))  # fmt: skip
    assert edges == [np.nextafter(1.0, -np.inf), 10.0]


def test_the_margin_counts_the_probes_it_names_wrong() -> None:
    """Margin 0 names 90 of 100 known probes right and 10 wrong (each a near tie between
    two enrolled people); a margin of 0.02 names 85 right and none wrong. Counting only
    the right picks 0; a wrong name costing ten missed ones picks 0.02."""
    from model_export.impostors import choose_margin

    rng = np.random.default_rng(4)
    s1 = rng.uniform(1.0, 2.0, 1000)
    k1 = np.full(100, 0.5)
    gap = np.where(np.arange(100) < 85, 0.5, 0.01)  # probes 85-99 are near ties
    ok = np.arange(100) < 90  # of which 90-99 name the wrong person
    a = {"s1": s1, "s2": s1 + 1.0, "who": np.arange(1000), "k1": k1, "k2": k1 + gap, "ok": ok}
    sim = {10: a, 30: a}
    assert choose_margin(sim, 0.0)[0] == 0.0
    best, seen = choose_margin(sim, 10.0)
    assert best == 0.02
    assert seen[0.0] == ([0.9, 0.9], [0.1, 0.1]) and seen[0.02] == ([0.85, 0.85], [0.0, 0.0])
