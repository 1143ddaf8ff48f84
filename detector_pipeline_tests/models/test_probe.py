import numpy as np

from detector_pipeline.models.probe import fit_probe, probe_scores, probe_state


def test_probe_learns_a_separable_imbalanced_problem_and_stores_as_arrays():
    rng = np.random.default_rng(0)
    n = 600
    y = (rng.random(n) < 0.11).astype(int)
    x = rng.normal(size=(n, 16))
    x[:, 3] += 2.5 * y  # one informative direction, at feature scale far from the others
    x[:, 7] *= 100
    fitted = fit_probe(x, y)
    state = probe_state(fitted)
    scores = probe_scores(state, x)
    np.testing.assert_allclose(scores, fitted.predict_proba(x)[:, 1], rtol=1e-6, atol=1e-9)
    from sklearn.metrics import roc_auc_score

    assert roc_auc_score(y, scores) > 0.9
    # class_weight="balanced": positives are not ignored, about half of them score above 0.5
    assert (scores[y == 1] > 0.5).mean() > 0.7


def _many_noisy_features(seed: int = 0, n: int = 400, dim: int = 300):
    """Fewer images than a probe could memorise: a weak signal spread over every feature, as in an
    embedding, under strong noise; images in groups of two (the split's source groups)."""
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(n // 2), 2)
    y = np.repeat((rng.random(n // 2) < 0.2).astype(int), 2)
    direction = np.random.default_rng(99).normal(size=dim)  # the same for every sample drawn
    return rng.normal(size=(n, dim)) * 3 + 0.3 * np.outer(y, direction), y, groups


def test_c_is_chosen_by_grouped_cross_validation_and_regularises_a_wide_problem():
    from detector_pipeline.models.probe import C_GRID, fit_selected, select_c

    x, y, groups = _many_noisy_features()
    selection = select_c(x, y, groups)
    assert selection.grid == C_GRID and selection.folds == 5
    assert len(selection.cv_roc_auc) == len(C_GRID) and all(m is not None for m in selection.cv_roc_auc)
    best = max(selection.cv_roc_auc)
    assert selection.chosen_c == C_GRID[selection.cv_roc_auc.index(best)]
    assert selection.chosen_c < 1.0  # many noise features, few images: the default would overfit
    fitted, again = fit_selected(x, y, groups)
    assert again == selection and fitted[-1].C == selection.chosen_c
    # on new images from the same process, the chosen C ranks at least as well as scikit-learn's default
    from sklearn.metrics import roc_auc_score

    x_new, y_new, _ = _many_noisy_features(seed=1)
    assert roc_auc_score(y_new, fitted.predict_proba(x_new)[:, 1]) >= \
        roc_auc_score(y_new, fit_probe(x, y, c=1.0).predict_proba(x_new)[:, 1])


def test_too_few_groups_of_a_class_leave_c_unchosen_and_say_so():
    from detector_pipeline.models.probe import C_GRID, select_c

    x = np.random.default_rng(0).normal(size=(20, 4))
    y = np.array([1, 1] + [0] * 18)
    selection = select_c(x, y, groups=np.repeat(np.arange(10), 2))  # both positives in one group
    assert selection.folds == 0 and selection.chosen_c in C_GRID and "not chosen" in selection.by
