"""teacher_labels and training_labels: validated label batches with a split, and their version."""

import hashlib
from pathlib import Path

import pandas as pd

from detector_pipeline.data import splits
from detector_pipeline.data.label_stats import POSITIVE_THRESHOLD, LabelStats
from detector_pipeline.data.labels import ValidatedLabels, load_labels, normalize_optional_columns


def prepare_labels(labels_path: Path, root: Path, seed: int = 0, val: float = 0.15, test: float = 0.15) -> ValidatedLabels:
    """Validated labels with a `split` column and a binary `label` (teacher score >= 0.5)."""
    validated = load_labels(labels_path, root)
    table = normalize_optional_columns(validated.accepted)
    table["split"] = splits.assign_splits(splits.group_column(table), seed, val, test, splits.held_out_rows(table))
    table["label"] = (table["ai_score"] >= POSITIVE_THRESHOLD).astype(int)
    return validated


def labels_version(table: pd.DataFrame) -> str:
    """A data version for a labels table: what images, with what scores, in what split."""
    digest = hashlib.sha256()
    for row in table[["sha256", "ai_score", "split"]].sort_values("sha256").itertuples(index=False):
        digest.update(f"{row.sha256}:{row.ai_score:.6f}:{row.split};".encode())
    return digest.hexdigest()[:16]


def label_stats_of(training_labels: pd.DataFrame) -> LabelStats:
    """Share of scores below 0.1 and at or above 0.5 over all splits and the train split; the loss's
    pos_weight = (1 - p) / p comes from the train split."""
    from detector_pipeline.data.label_stats import score_shape

    train_scores = training_labels.loc[training_labels["split"] == "train", "ai_score"].to_numpy()
    return LabelStats(all_splits=score_shape(training_labels["ai_score"].to_numpy()), train=score_shape(train_scores),
                      labels_version=labels_version(training_labels))


def write_quarantine(data_dir: Path, batch: str, version: str, quarantined: pd.DataFrame) -> Path:
    from detector_pipeline.registry.artifacts import write_bytes_atomic

    path = data_dir / "quarantine" / batch / f"{version}.parquet"
    write_bytes_atomic(path, quarantined.to_parquet(index=False))
    return path
