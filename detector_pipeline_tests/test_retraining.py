"""Retraining on a new label batch: incremental embeddings, the nightly decision, lineage, the gate."""

import json
from pathlib import Path

import dagster as dg
import numpy as np
import pytest

from detector_pipeline import registry, steps
from detector_pipeline.assets import ASSETS, CHECKS
from detector_pipeline.batches import READY_MARKER
from detector_pipeline.lineage import lineage
from detector_pipeline.schedules import nightly_retrain
from detector_pipeline_tests.conftest import write_tiny_dataset
from detector_pipeline_tests.test_pipeline_integration import materialize_base, tiny_settings  # noqa: F401

TRAINING_DOWNSTREAM = ["training_labels", "label_stats", "embeddings", "probe_model", "detector",
                       "evaluation_report", "promoted_detector"]


def _add_batch(settings, instance, name: str, n: int = 8) -> None:
    folder = Path(settings.incoming_dir) / name
    write_tiny_dataset(folder, n=n, seed=7)
    (folder / READY_MARKER).touch()
    instance.add_dynamic_partitions("label_batches", [name])
    result = dg.materialize([*ASSETS, *CHECKS], selection=["teacher_labels"], partition_key=name,
                            resources={"settings": settings}, instance=instance)
    assert result.success


def _retrain(settings, instance, **run_config) -> dg.ExecuteInProcessResult:
    config = {"ops": {"detector": {"config": run_config}}} if run_config else None
    return dg.materialize([*ASSETS, *CHECKS], selection=TRAINING_DOWNSTREAM, resources={"settings": settings},
                          instance=instance, run_config=config, raise_on_error=False)


def _tick(instance, settings):
    return nightly_retrain(dg.build_schedule_context(instance=instance, resources={"settings": settings}))


@pytest.fixture
def trained(tiny_settings, tmp_path):  # noqa: F811
    # A real instance on disk (schedules need one), in the test's own folder: Dagster keeps a process-wide
    # pointer to the last instance's state storage, so its files must outlive the test.
    (tmp_path / "dagster_home").mkdir()
    with dg.DagsterInstance.local_temp(tempdir=str(tmp_path / "dagster_home")) as instance:
        assert materialize_base(tiny_settings, instance).success
        yield tiny_settings, instance


def test_new_batch_retrain_embeds_only_new_images_and_lineage_reaches_both_batches(trained):
    settings, instance = trained
    first = registry.read_promoted(Path(settings.data_dir))
    assert first is not None

    skip = _tick(instance, settings)
    assert isinstance(skip, dg.SkipReason) and "nothing changed" in skip.skip_message

    _add_batch(settings, instance, "b1", n=8)
    due = _tick(instance, settings)
    assert isinstance(due, dg.RunRequest) and "b1" in due.tags["retrain_reason"]

    result = _retrain(settings, instance)
    assert result.success
    embeddings_meta = instance.get_latest_materialization_event(dg.AssetKey("embeddings")).asset_materialization.metadata
    assert embeddings_meta["computed"].value == 8 and embeddings_meta["reused"].value == 64

    version = result.output_for_node("detector")["version"]
    walk = lineage(instance, version)
    assert [b["batch"] for b in walk["label_batches"]] == ["b1", "base"]
    assert all(b["materialization"] is not None for b in walk["label_batches"])
    assert walk["detector"]["run_id"] == result.run_id
    assert {"training_labels", "label_stats"} <= set(walk["inputs"])

    skip = _tick(instance, settings)
    assert isinstance(skip, dg.SkipReason)


def test_a_worse_candidate_is_not_promoted(trained, monkeypatch):
    settings, instance = trained
    promoted = registry.read_promoted(Path(settings.data_dir))
    real_scores = steps.detector_scores

    def scores(model: dict, files, profile, *perturb):
        """The promoted model ranks validation perfectly; any other version ranks it backwards."""
        labels = np.array([int(f in positives) for f in map(str, files)])
        return labels.astype(float) if model["version"] == promoted["version"] else 1.0 - labels

    table = dg.materialize([*ASSETS, *CHECKS], selection=["training_labels"], resources={"settings": settings},
                           instance=instance).output_for_node("training_labels")
    positives = set(table.loc[table["label"] == 1, "file"])
    monkeypatch.setattr(steps, "detector_scores", scores)
    result = _retrain(settings, instance, seed=12345)
    monkeypatch.setattr(steps, "detector_scores", real_scores)

    assert not result.success
    checks = {e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data
              for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}
    gate = checks["detector_not_worse_than_promoted"]
    assert not gate.passed and "worse than the promoted model" in gate.metadata["why"].value
    assert registry.read_promoted(Path(settings.data_dir))["version"] == promoted["version"]
    assert json.loads((Path(settings.data_dir) / "registry" / "promoted.json").read_text())["version"] == promoted["version"]


def test_scoring_a_folder_with_the_promoted_model(trained):
    settings, instance = trained
    result = dg.materialize([*ASSETS, *CHECKS], selection=["feed_scores"], resources={"settings": settings},
                            instance=instance)
    summary = result.output_for_node("feed_scores")
    assert summary["images"] == 64 and summary["model_version"] == registry.read_promoted(Path(settings.data_dir))["version"]


def test_ablation_study_reports_a_verdict_per_claim(trained):
    settings, instance = trained
    from detector_pipeline import ablations

    monkey_seeds = ablations.SEEDS
    ablations.SEEDS = (0, 1)  # two seeds keep the test short; the real study runs three
    try:
        result = dg.materialize([*ASSETS, *CHECKS], selection=["ablation_study"], resources={"settings": settings},
                                instance=instance)
    finally:
        ablations.SEEDS = monkey_seeds
    summary = result.output_for_node("ablation_study")
    assert [len(runs) for runs in summary["runs"].values()] == [2, 2, 2]
    assert [c["verdict"] for c in summary["claims"]] and all(
        c["verdict"] in ("confirmed", "refuted", "inconclusive") for c in summary["claims"])
    report = dg.materialize([*ASSETS, *CHECKS], selection=["evaluation_report"], resources={"settings": settings},
                            instance=instance).output_for_node("evaluation_report")
    assert report["ablations"]["claims"] == summary["claims"]
