"""The whole graph, materialized in-process on a tiny generated data set with tiny random models."""

import json
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from detector_pipeline.data.batches import BASE_BATCH
from detector_pipeline.defs.resources import PipelineSettings
from detector_pipeline_tests.helpers import materialize_base

pytestmark = pytest.mark.slow  # trains and evaluates both models in a Dagster run


def test_whole_chain_materializes_and_writes_the_report(tiny_settings: PipelineSettings):
    data_dir = Path(tiny_settings.data_dir)
    instance = dg.DagsterInstance.ephemeral()
    result = materialize_base(tiny_settings, instance)
    assert result.success

    report = json.loads((data_dir / "reports" / "latest" / "report.json").read_text())
    for model in ("probe", "detector"):
        for split in ("train", "test_in_distribution"):
            assert set(report[model][split]) >= {"roc_auc", "pr_auc", "n", "positives"}
        assert report[model]["randomly_initialised"] is True
    assert report["n_test"] == report["counts"]["test_split"] == report["detector"]["test_in_distribution"]["n"] > 0
    assert "test_held_out" not in report["detector"]  # no family held out in these labels
    assert report["probe"]["architecture"] == "test_vit" and report["detector"]["architecture"] == "test_convnext"
    assert 0 <= report["operating_point"]["threshold"] <= 1
    markdown = (data_dir / "reports" / "latest" / "report.md").read_text()
    assert "RANDOMLY INITIALISED" in markdown

    materialization = instance.get_latest_materialization_event(dg.AssetKey("evaluation_report")).asset_materialization
    assert "data:image/png;base64," in materialization.metadata["curves"].value
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey("teacher_labels"), asset_partitions=[BASE_BATCH]), limit=1).records
    labels_meta = records[0].asset_materialization.metadata
    assert labels_meta["accepted"].value == 64 and labels_meta["quarantined"].value == 0

    # Every model file was written as safetensors + JSON at a content-addressed path, with a model card.
    detector = result.output_for_node("detector")
    folder = data_dir / detector.folder
    assert not Path(detector.folder).is_absolute()
    assert (folder / "model.safetensors").exists() and (folder / "config.json").exists()
    assert folder.name == detector.version
    card = json.loads((folder / "model_card.json").read_text())
    assert card["batches"][0]["batch"] == BASE_BATCH and card["run_id"] == result.run_id
    assert "test" not in card["metrics"]  # the card is training's: its test figures are the report's

    # What production compares with is the report's, handed on through the graph: the evaluation
    # report names its folder, and the promotion names the report.
    evaluation = result.output_for_node("evaluation_report")
    assert evaluation.detector_version == detector.version and evaluation.threshold == report["operating_point"]["threshold"]
    reference = pd.read_parquet(data_dir / evaluation.folder / "reference_scores.parquet")
    assert len(reference) == report["detector"]["test_in_distribution"]["n"] and not (folder / "reference_scores.parquet").exists()
    promoted = result.output_for_node("promoted_detector")
    assert promoted.report_id == evaluation.report_id and promoted.threshold == evaluation.threshold
