"""The whole graph, materialized in-process on a tiny generated data set with tiny random models."""

import json
from pathlib import Path

import dagster as dg

from detector_pipeline.assets import ASSETS, CHECKS
from detector_pipeline.resources import PipelineSettings


def test_whole_chain_materializes_and_writes_the_report(tiny_dataset: Path, tmp_path: Path):
    data_dir = tmp_path / "artifacts"
    settings = PipelineSettings(profile="tiny", labels_path=str(tiny_dataset), images_root=str(tiny_dataset.parent),
                                data_dir=str(data_dir), weights_dir=str(tmp_path / "weights"), device="cpu")
    instance = dg.DagsterInstance.ephemeral()
    result = dg.materialize([*ASSETS, *CHECKS], resources={"settings": settings}, instance=instance)
    assert result.success

    report = json.loads((data_dir / "reports" / "latest" / "report.json").read_text())
    for model in ("probe", "detector"):
        for split in ("train", "test"):
            assert set(report[model][split]) >= {"roc_auc", "pr_auc", "n", "positives"}
        assert report[model]["randomly_initialised"] is True
    assert report["n_test"] == report["detector"]["test"]["n"] > 0
    assert report["probe"]["architecture"] == "test_vit" and report["detector"]["architecture"] == "test_convnext"
    markdown = (data_dir / "reports" / "latest" / "report.md").read_text()
    assert "RANDOMLY INITIALISED" in markdown

    materialization = instance.get_latest_materialization_event(dg.AssetKey("evaluation_report")).asset_materialization
    assert "data:image/png;base64," in materialization.metadata["curves"].value
    labels_meta = instance.get_latest_materialization_event(dg.AssetKey("teacher_labels")).asset_materialization.metadata
    assert labels_meta["accepted"].value == 48 and labels_meta["quarantined"].value == 0

    # Every model file was written as safetensors + JSON at a content-addressed path.
    detector_dir = Path(result.output_for_node("detector")["folder"])
    assert (detector_dir / "model.safetensors").exists() and (detector_dir / "config.json").exists()
    assert detector_dir.name == result.output_for_node("detector")["version"]
