"""The linear probe: standardized features, class-balanced logistic regression.

Stored as plain arrays (scaler mean/scale, coefficients, intercept) in safetensors, never pickled.
"""

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler


def fit_probe(x: np.ndarray, y: np.ndarray, seed: int = 0) -> Pipeline:
    probe = make_pipeline(
        StandardScaler(), LogisticRegression(class_weight="balanced", max_iter=2000, random_state=seed)
    )
    return probe.fit(x, np.asarray(y).astype(int))


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
