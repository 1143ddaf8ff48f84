"""The promoted model in production, in-process on tiny data: a new batch evaluated before the retrain,
its review queue, the feed's drift check, the ONNX export of the promoted version."""

import json
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from detector_pipeline.cli import main
from detector_pipeline.cli.runs import run_outcome as _run_outcome
from detector_pipeline.data.batches import BASE_BATCH, READY_MARKER
from detector_pipeline.defs.assets import ASSETS, BATCH_ASSETS, CHECKS
from detector_pipeline.defs.resources import pipeline_resources
from detector_pipeline.evaluation import drift
from detector_pipeline.registry import live_figures
from detector_pipeline.registry import pointer as registry
from detector_pipeline.registry import reports
from detector_pipeline_tests.helpers import write_tiny_dataset

pytestmark = pytest.mark.slow  # Dagster runs of the pipeline, most after training on the base labels

BATCH_KEYS = [a.key for a in BATCH_ASSETS]


def _checks(result) -> dict:
    return {e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data
            for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}


def _drop_batch(settings, instance, name: str) -> dg.ExecuteInProcessResult:
    """A batch with the demo's columns (families, ground truth), validated as the sensor's run does it."""
    folder = Path(settings.incoming_dir) / name
    write_tiny_dataset(folder, n=48, seed=11, demo_columns=True)
    (folder / READY_MARKER).touch()
    instance.add_dynamic_partitions("label_batches", [name])
    return dg.materialize([*ASSETS, *CHECKS], selection=BATCH_KEYS, partition_key=name,
                          resources=pipeline_resources(settings), instance=instance)


def test_a_new_batch_is_scored_by_the_promoted_model_and_queued_for_review(trained, tmp_path, monkeypatch, capsys):
    settings, instance = trained
    data = Path(settings.data_dir)
    promoted = registry.read_promoted(data)
    result = _drop_batch(settings, instance, "b1")
    assert result.success
    evaluation = result.output_for_node("batch_evaluation")
    assert evaluation.status == "measured" and evaluation.model_version == promoted["version"]
    assert evaluation.n == 48 and evaluation.already_trained_on == 0
    figures = evaluation.figures
    assert figures["teacher"]["roc_auc"]["ci95"] is not None and "ground_truth" in figures
    assert {r["slice"] for r in figures["families"]} == {"family=checker", "family=held_out_gen"}
    check = _checks(result)["batch_within_test_noise"]
    assert check.severity == dg.AssetCheckSeverity.WARN and check.partition == "b1"
    assert check.metadata["batch"].value == "b1" and check.metadata["model_version"].value == promoted["version"]
    assert check.metadata["why"].value.startswith(("the batch's ROC-AUC is", "not judged: "))

    [entry] = live_figures.series(data)
    assert entry["batch"] == "b1" and entry["model_version"] == promoted["version"]
    materialization = instance.get_latest_materialization_event(dg.AssetKey("batch_evaluation")).asset_materialization
    assert materialization.partition == "b1" and "data:image/png;base64," in materialization.metadata["series"].value

    queue = result.output_for_node("review_queue")
    assert queue["rows"] == 48 and (data / queue["contact_sheet"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = pd.read_parquet(data / queue["queue_file"])
    assert table["disagreement"].is_monotonic_decreasing and table["file"].map(lambda f: (data / f).is_file()).all()

    monkeypatch.setenv("DETECTOR_DATA_DIR", str(data))
    assert main(["review", "b1", "--out", str(tmp_path / "q.parquet")]) == 0
    assert "48 images where detector" in capsys.readouterr().out
    assert pd.read_parquet(tmp_path / "q.parquet").equals(table)
    assert main(["review", "nope"]) == 4
    assert capsys.readouterr().err.count("\n") == 1
    assert main(["models", "--json"]) == 0
    row = next(r for r in json.loads(capsys.readouterr().out) if r["version"] == promoted["version"])
    assert row["live_batches"] == 1 and row["live_roc_auc"] == entry["batch_roc_auc"]


def test_a_batch_that_arrives_before_any_promotion_says_there_is_no_model(tiny_settings):
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("label_batches", [BASE_BATCH])
    result = dg.materialize([*ASSETS, *CHECKS], selection=BATCH_KEYS, partition_key=BASE_BATCH,
                            resources=pipeline_resources(tiny_settings), instance=instance)
    assert result.success
    evaluation = result.output_for_node("batch_evaluation")
    assert evaluation.status == "no promoted model" and "no detector was promoted" in evaluation.why
    assert _checks(result)["batch_within_test_noise"].passed
    assert result.output_for_node("review_queue")["rows"] == 0


def test_the_promoted_version_is_exported_to_onnx_with_parity(trained):
    settings, instance = trained
    data = Path(settings.data_dir)
    event = instance.get_latest_materialization_event(dg.AssetKey("promoted_detector_onnx"))
    metadata = event.asset_materialization.metadata
    assert metadata["version"].value == registry.read_promoted(data)["version"]
    assert metadata["max_abs_delta_p"].value <= 1e-4 and metadata["parity_images"].value > 0
    assert (data / metadata["onnx"].value).is_file()


def test_an_export_that_cant_be_made_fails_its_check_not_the_run(trained, monkeypatch):
    """The promotion has happened when the export runs: without ONNX Runtime the run still succeeds,
    and the check says why there is no export."""
    from detector_pipeline.export.onnx_export import OnnxUnavailable
    from detector_pipeline.tasks import production

    settings, instance = trained

    def unavailable(*args, **kwargs):
        raise OnnxUnavailable("onnxruntime is not installed: pip install -e . (make venv does)")

    monkeypatch.setattr(production, "export_promoted", unavailable)
    result = dg.materialize([*ASSETS, *CHECKS], selection=["promoted_detector_onnx"], resources=pipeline_resources(settings),
                            instance=instance)
    assert result.success and result.output_for_node("promoted_detector_onnx")["exported"] is False
    check = _checks(result)["onnx_matches_torch"]
    assert not check.passed and check.metadata["why"].value.startswith("not exported: onnxruntime is not installed")
    assert _run_outcome(result) == ([], [])  # not a refusal of the gate, not an error


def test_feed_scores_carry_a_drift_check_against_the_test_split(trained, monkeypatch):
    settings, instance = trained
    result = dg.materialize([*ASSETS, *CHECKS], selection=["feed_scores"], resources=pipeline_resources(settings),
                            instance=instance)
    check = _checks(result)["feed_matches_test_distribution"]
    assert check.severity == dg.AssetCheckSeverity.WARN and check.passed
    assert check.metadata["why"].value.startswith("too few images")  # the tiny test split: 50 needed

    monkeypatch.setattr(drift, "MIN_IMAGES", 5)  # judge it anyway: the statistics and their pictures
    check = _checks(dg.materialize([*ASSETS, *CHECKS], selection=["feed_scores"], resources=pipeline_resources(settings),
                                   instance=instance))["feed_matches_test_distribution"]
    reference = reports.reference_scores(Path(settings.data_dir), registry.read_promoted(Path(settings.data_dir))["report_id"])
    assert check.metadata["test_images"].value == len(reference) and check.metadata["feed_images"].value == 64
    assert check.metadata["psi"].value >= 0 and "data:image/png;base64," in check.metadata["histogram"].value
    assert check.passed == (check.metadata["why"].value == "within the documented thresholds")
