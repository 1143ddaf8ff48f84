"""batch_evaluation's answers where there is nothing to measure: no scoring happens in any of them."""

import json

import pandas as pd
import pytest

from detector_pipeline.config.profiles import get_profile
from detector_pipeline.registry import reports
from detector_pipeline.registry.records import PromotedModel
from detector_pipeline.tasks import production


@pytest.fixture
def promoted(tmp_path):
    folder = tmp_path / "models/detector/v1"
    folder.mkdir(parents=True)
    (folder / "model_card.json").write_text(json.dumps({"batches": [{"batch": "b1", "data_version": "dv1"}]}))
    return PromotedModel(version="v1", folder="models/detector/v1", threshold=0.9, operating_point={"threshold": 0.9},
                         report_id="v1-p1")


def _batch(version="dv2", n=3):
    return pd.DataFrame({"sha256": [f"h{i}" for i in range(n)], "batch_version": version, "ai_score": 0.1,
                         "label": 0, "file": [f"/nowhere/{i}.png" for i in range(n)]})


def _evaluate(batch, promoted, data_dir, name="b2"):
    return production.evaluate_batch(name, batch, promoted, data_dir, get_profile("tiny", data_dir))


def test_an_empty_batch_is_not_measured(promoted, tmp_path):
    result = _evaluate(_batch(n=0), promoted, tmp_path)
    assert result.status == "empty batch" and "no row" in result.why


def test_the_batch_the_model_trained_on_is_not_a_live_measurement(promoted, tmp_path):
    result = _evaluate(_batch("dv1"), promoted, tmp_path, name="b1")
    assert result.status == "trained on it" and "v1" in result.why


def test_images_the_model_learnt_from_are_left_out(promoted, tmp_path):
    report_folder = reports.report_folder(tmp_path, promoted.report_id)
    report_folder.mkdir(parents=True)
    pd.DataFrame({"sha256": ["h0", "h1", "h2"]}).to_parquet(report_folder / reports.TRAINED_ON)
    assert _evaluate(_batch(), promoted, tmp_path).status == "trained on it"


def test_a_promoted_model_that_cant_be_loaded_measures_nothing_and_says_why(promoted, tmp_path):
    result = _evaluate(_batch(), promoted, tmp_path)  # the folder has no weights
    assert result.status == "promoted model unusable" and "model files missing" in result.why
    assert not (tmp_path / "production").exists()


def test_no_promoted_model_measures_nothing_and_says_why(tmp_path):
    result = _evaluate(_batch(), None, tmp_path)
    assert result.status == "no promoted model" and result.model_version is None
    assert result.why == production.NO_MODEL
