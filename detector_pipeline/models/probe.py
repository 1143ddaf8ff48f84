"""The linear probe: standardized features, class-balanced logistic regression, its regularisation
chosen by grouped cross-validation on the training split.

Stored as plain arrays (scaler mean/scale, coefficients, intercept) in safetensors, never pickled.
"""

from dataclasses import asdict, dataclass

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedGroupKFold, cross_val_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

# Inverse regularisation strengths tried. A few thousand standardized features from about a thousand
# images: an unregularised fit separates train perfectly and ranks new images far worse, so the grid
# reaches well below scikit-learn's default of 1.
C_GRID = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 1.0)
CV_FOLDS = 5


@dataclass(frozen=True)
class ProbeSelection:
    """How C was chosen: the grid, each value's mean ROC-AUC over the folds, the winner."""

    grid: tuple[float, ...]
    cv_roc_auc: tuple[float | None, ...]
    chosen_c: float
    folds: int
    by: str

    def as_dict(self) -> dict:
        return asdict(self)


def _pipeline(c: float, seed: int) -> Pipeline:
    return make_pipeline(StandardScaler(),
                         LogisticRegression(C=c, class_weight="balanced", max_iter=2000, random_state=seed))


def select_c(x: np.ndarray, y: np.ndarray, groups: np.ndarray, seed: int = 0,
             grid: tuple[float, ...] = C_GRID, folds: int = CV_FOLDS) -> ProbeSelection:
    """C with the best mean ROC-AUC over stratified folds of whole source groups (an image's near
    copies never sit on both sides of a fold). Ties go to the smaller C, the stronger regularisation.
    Too few groups of either class for two folds: the middle of the grid, and it says so."""
    y = np.asarray(y).astype(int)
    groups = np.asarray(groups)
    per_class = min(len(set(groups[y == k])) for k in (0, 1))
    folds = min(folds, per_class)
    if folds < 2:
        middle = grid[len(grid) // 2]
        return ProbeSelection(tuple(grid), tuple(None for _ in grid), middle, 0,
                              f"not chosen: fewer than 2 source groups of a class in train; C = {middle:g}")
    splits = list(StratifiedGroupKFold(n_splits=folds, shuffle=True, random_state=seed).split(x, y, groups))
    means = []
    for c in grid:
        scores = cross_val_score(_pipeline(c, seed), x, y, cv=splits, scoring="roc_auc", error_score=np.nan)
        means.append(None if np.all(np.isnan(scores)) else float(np.nanmean(scores)))
    scored = [m for m in means if m is not None]
    chosen = next(c for c, m in zip(grid, means) if m == max(scored)) if scored else grid[len(grid) // 2]
    return ProbeSelection(tuple(grid), tuple(means), chosen, folds,
                          f"grouped {folds}-fold cross-validation on train (stratified by class, whole source "
                          f"groups), mean ROC-AUC")


def fit_probe(x: np.ndarray, y: np.ndarray, seed: int = 0, c: float = 1.0) -> Pipeline:
    return _pipeline(c, seed).fit(x, np.asarray(y).astype(int))


def fit_selected(x: np.ndarray, y: np.ndarray, groups: np.ndarray, seed: int = 0) -> tuple[Pipeline, ProbeSelection]:
    """The probe every caller fits: C chosen by `select_c` on these rows, then fitted on all of them."""
    selection = select_c(x, y, groups, seed)
    return fit_probe(x, y, seed, selection.chosen_c), selection


def probe_state(probe: Pipeline) -> dict[str, torch.Tensor]:
    scaler, logreg = probe[0], probe[-1]
    return {
        "mean": torch.from_numpy(scaler.mean_.astype(np.float64)),
        "scale": torch.from_numpy(scaler.scale_.astype(np.float64)),
        "coef": torch.from_numpy(logreg.coef_[0].astype(np.float64)),
        "intercept": torch.from_numpy(logreg.intercept_.astype(np.float64)),
    }


def probe_scores(state: dict[str, torch.Tensor], x: np.ndarray) -> np.ndarray:
    """P(AI) from the stored arrays; equal to the fitted pipeline's predict_proba[:, 1]."""
    z = (x - state["mean"].numpy()) / state["scale"].numpy()
    logits = z @ state["coef"].numpy() + state["intercept"].numpy()[0]
    return 1.0 / (1.0 + np.exp(-logits))
