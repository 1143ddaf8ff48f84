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
