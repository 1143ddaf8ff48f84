"""Shortcut baselines: can the label be predicted without looking at the picture?"""

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupKFold, cross_val_predict

# libjpeg's standard luminance quantization table, to estimate the quality a JPEG was saved at.
_STD_LUMA = np.array([16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
                      14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113,
                      92, 49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99], dtype=float)


def jpeg_quality(path: Path) -> float:
    """Estimated JPEG quality (0-100) from the luminance table; 100 for non-JPEG files."""
    with Image.open(path) as image:
        tables = getattr(image, "quantization", None)
        if not tables:
            return 100.0
        scale = np.mean(np.asarray(tables[0], dtype=float)) / np.mean(_STD_LUMA) * 100
    return float(np.clip(200 - scale if scale <= 100 else 5000 / scale, 0, 100))


def metadata_features(files: list[str]) -> np.ndarray:
    rows = []
    for f in files:
        path = Path(f)
        with Image.open(path) as image:
            width, height = image.size
        rows.append([width, height, path.stat().st_size, jpeg_quality(path)])
    return np.asarray(rows, dtype=float)


HISTORY_COLUMN = "processing"  # optional in the labels: what was done to the image (resized, recompressed, ...)


def metadata_baseline(labels: pd.DataFrame, groups: np.ndarray, folds: int = 5) -> dict:
    """Grouped cross-validated ROC-AUC of a gradient-boosting classifier on (width, height, file size,
    JPEG quality, and the processing history where the labels give it) alone, against the teacher label."""
    y = labels["label"].to_numpy()
    folds = min(folds, len(np.unique(groups)))
    if folds < 2 or y.min() == y.max():
        return {"roc_auc": None, "verdict": "not enough data for the metadata baseline"}
    x = metadata_features(list(labels["file"]))
    names = ["width", "height", "file_size", "jpeg_quality"]
    if HISTORY_COLUMN in labels.columns:
        history = pd.get_dummies(labels[HISTORY_COLUMN].astype(object).where(labels[HISTORY_COLUMN].notna(), "unknown"))
        x = np.column_stack([x, history.to_numpy(dtype=float)])
        names += [f"{HISTORY_COLUMN}={c}" for c in history.columns]
    scores = cross_val_predict(HistGradientBoostingClassifier(random_state=0), x, y, groups=groups,
                               cv=GroupKFold(folds), method="predict_proba")[:, 1]
    auc = float(roc_auc_score(y, scores))
    if auc <= 0.6:
        verdict = "no metadata shortcut: size, file size and JPEG quality say little about the label"
    elif auc <= 0.75:
        verdict = "a weak metadata signal: some of the label can be guessed without looking at the picture"
    else:
        verdict = ("THE DATA LEAKS: the label can be predicted from size, file size and JPEG quality alone; "
                   "a detector may learn this shortcut instead of the picture")
    return {"features": names, "roc_auc": auc, "verdict": verdict}
