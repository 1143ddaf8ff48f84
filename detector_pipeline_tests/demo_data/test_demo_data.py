"""The committed demo set: what data/demo/README.md promises holds."""

import hashlib

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import GroupKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from detector_pipeline.data import splits
from detector_pipeline.demo_data import histories
from detector_pipeline_tests.helpers import PROJECT_ROOT

DEMO = PROJECT_ROOT / "data" / "demo"


@pytest.fixture(scope="module")
def labels() -> pd.DataFrame:
    return pd.read_parquet(DEMO / "labels.parquet")


def test_columns(labels):
    for column in ("image_path", "ai_score", "is_ai", "family", "generator", "source_group", "license",
                   "source_package", "sha256", "family_held_out", "source_held_out", "processing", "subject"):
        assert column in labels.columns


def test_every_file_present_with_its_hash(labels):
    for path, sha in zip(labels["image_path"], labels["sha256"]):
        assert hashlib.sha256((DEMO / path).read_bytes()).hexdigest() == sha, path
    on_disk = {f"images/{p.name}" for p in (DEMO / "images").iterdir()}
    assert on_disk == set(labels["image_path"])


def test_size_and_count(labels):
    assert len(labels) >= 1200
    total = sum(f.stat().st_size for f in DEMO.rglob("*") if f.is_file())
    assert total <= 60 * 2**20


def test_licence_never_empty(labels):
    assert labels["license"].str.strip().str.len().gt(0).all()
    provenance = pd.read_parquet(DEMO / "provenance.parquet")
    assert set(provenance["image_path"]) == set(labels["image_path"])
    assert provenance["source_file"].str.len().gt(0).all()


def test_at_least_four_generator_families_one_held_out(labels):
    ai = labels[labels["is_ai"]]
    assert ai["family"].nunique() >= 4 + 1
    held_out = ai.loc[ai["family_held_out"], "family"].unique()
    assert len(held_out) == 1
    assert not labels.loc[~labels["is_ai"], "family_held_out"].any()


def test_enough_independent_sources_for_the_claims(labels):
    """The issue's power targets, on the split the pipeline's default settings make."""
    real = labels[~labels["is_ai"]]
    assert real["source_group"].nunique() >= 150
    split = splits.assign_splits(splits.group_column(labels), 0, 0.15, 0.15, splits.held_out_rows(labels))
    test = labels[split == "test"]
    seen_ai = test[test["is_ai"] & ~test["family_held_out"]]
    assert len(seen_ai) >= 100 and seen_ai["source_group"].nunique() >= 60
    held_out_real = test[~test["is_ai"] & test["source_held_out"]]
    assert len(held_out_real) >= 50 and held_out_real["source_group"].nunique() >= 20
    assert not labels.loc[split != "test", "source_held_out"].any()


def test_both_classes_have_one_distribution_of_processing_histories(labels):
    shares = pd.crosstab(labels["processing"], labels["is_ai"], normalize="columns")
    assert set(shares.index) == set(histories.HISTORIES)
    assert (shares[True] - shares[False]).abs().max() < 0.02


def test_positives_between_10_and_20_percent(labels):
    assert 0.10 <= labels["is_ai"].mean() <= 0.20


def test_teacher_is_shaped_like_the_articles(labels):
    scores = labels["ai_score"]
    assert scores.between(0, 1).all()
    assert 0.70 <= (scores < 0.1).mean() <= 0.80
    assert 0.08 <= (scores >= 0.5).mean() <= 0.14
    # imperfect: it agrees with the ground truth mostly, not always
    agreement = ((scores >= 0.5) == labels["is_ai"]).mean()
    assert 0.9 < agreement < 1.0


def test_one_format_for_both_classes(labels):
    signatures = set()
    for path in labels["image_path"]:
        with Image.open(DEMO / path) as image:
            assert image.format == "JPEG"
            assert not image.getexif() and "icc_profile" not in image.info
            signatures.add((image.mode, str(image.quantization), str(image.layer)))
    assert len(signatures) == 1  # same quality tables and chroma subsampling everywhere


def _metadata_features(labels: pd.DataFrame) -> np.ndarray:
    """Size, file size, pixel statistics and the processing history (resized or not, recompressed)."""
    rows = []
    for path in labels["image_path"]:
        pixels = np.asarray(Image.open(DEMO / path), dtype=np.float32)
        rows.append([pixels.shape[1], pixels.shape[0], (DEMO / path).stat().st_size, pixels.mean(), pixels.std()])
    return np.column_stack([np.array(rows), pd.get_dummies(labels["processing"]).to_numpy(dtype=float)])


@pytest.fixture(scope="module")
def metadata_features(labels) -> np.ndarray:
    """Every demo image decoded once for the tests below, not once per test."""
    return _metadata_features(labels)


def test_sizes_of_the_two_classes_overlap(labels, metadata_features):
    widths = metadata_features[:, 0]
    ai, real = widths[labels["is_ai"]], widths[~labels["is_ai"]]
    assert ai.min() < np.median(real) < ai.max() and real.min() < np.median(ai) < real.max()


@pytest.mark.parametrize("model", [
    make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000)),
    pytest.param(HistGradientBoostingClassifier(random_state=0), marks=pytest.mark.slow),  # half a minute on 2 cores
], ids=["logistic", "gradient-boosting"])
def test_metadata_alone_cannot_tell_the_classes_apart(labels, metadata_features, model):
    x = metadata_features
    y = labels["is_ai"].to_numpy()
    scores = cross_val_predict(model, x, y, groups=labels["source_group"], cv=GroupKFold(5), method="predict_proba")[:, 1]
    assert roc_auc_score(y, scores) <= 0.65
