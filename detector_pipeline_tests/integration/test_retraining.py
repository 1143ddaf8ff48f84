"""Retraining on a new label batch: incremental embeddings, the nightly decision, lineage, the gate."""

import json
import shutil
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest

from detector_pipeline.cli import main
from detector_pipeline.cli.runs import run_outcome as _run_outcome
from detector_pipeline.data.batches import READY_MARKER
from detector_pipeline.defs.assets import ASSETS, CHECKS
from detector_pipeline.defs.resources import pipeline_resources
from detector_pipeline.config.environment import read_environment
from detector_pipeline.defs.schedules import nightly_retrain
from detector_pipeline.registry import pointer as registry
from detector_pipeline.registry.lineage import lineage
from detector_pipeline.tasks import ablations as ablation_tasks
from detector_pipeline.tasks import models as model_tasks
from detector_pipeline.tasks import promotion as promotion_tasks
from detector_pipeline.tasks.labels import labels_version
from detector_pipeline_tests.helpers import settings_for, trained_on, write_tiny_dataset

pytestmark = pytest.mark.slow  # every test trains on the base labels in Dagster runs, most retrain

TRAINING_DOWNSTREAM = ["training_labels", "label_stats", "embeddings", "probe_model", "detector",
                       "offtheshelf_baseline", "evaluation_report", "shadow_comparison", "promoted_detector"]


def _add_batch(settings, instance, name: str, n: int = 8) -> None:
    folder = Path(settings.incoming_dir) / name
    write_tiny_dataset(folder, n=n, seed=7)
    (folder / READY_MARKER).touch()
    instance.add_dynamic_partitions("label_batches", [name])
    result = dg.materialize([*ASSETS, *CHECKS], selection=["teacher_labels"], partition_key=name,
                            resources=pipeline_resources(settings), instance=instance)
    assert result.success


def _retrain(settings, instance, **run_config) -> dg.ExecuteInProcessResult:
    config = {"ops": {"detector": {"config": run_config}}} if run_config else None
    return dg.materialize([*ASSETS, *CHECKS], selection=TRAINING_DOWNSTREAM, resources=pipeline_resources(settings),
                          instance=instance, run_config=config, raise_on_error=False)


def _tick(instance, settings):
    return nightly_retrain(read_environment().retrain_cron)(dg.build_schedule_context(instance=instance, resources={"settings": settings}))


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

    version = result.output_for_node("detector").version
    walk = lineage(instance, version)
    assert [b["batch"] for b in walk["label_batches"]] == ["b1", "base"]
    assert all(b["materialization"] is not None for b in walk["label_batches"])
    assert walk["detector"]["run_id"] == result.run_id
    assert {"training_labels", "label_stats"} <= set(walk["inputs"])
    # the decisions about it, each with what it read: the gate on it, its report, its promotion
    made = walk["decisions"]
    assert {g["check"] for g in made["gate"]} == {"detector_beats_probe_on_validation", "detector_not_worse_than_promoted"}
    assert [r["report_id"] for r in made["reports"]] == [result.output_for_node("evaluation_report").report_id]
    assert {"detector", "training_labels", "probe_model"} <= set(made["reports"][0]["inputs"])
    [promotion] = made["promotions"]
    assert promotion["run_id"] == result.run_id and promotion["report_id"] == made["reports"][0]["report_id"]
    assert promotion["inputs"]["evaluation_report"] == made["reports"][0]["storage_id"]

    skip = _tick(instance, settings)
    assert isinstance(skip, dg.SkipReason)


def test_a_worse_candidate_is_not_promoted(trained, monkeypatch):
    settings, instance = trained
    promoted = registry.read_promoted(Path(settings.data_dir))
    real_scores = promotion_tasks.validation_scores

    def scores(labels, folder: Path, profile, data_dir):
        """The promoted model ranks validation perfectly; any other version ranks it backwards."""
        files = labels.loc[labels["split"] == "val", "file"]
        truth = np.array([int(f in positives) for f in map(str, files)])
        return truth.astype(float) if folder.name == promoted["version"] else 1.0 - truth

    table = dg.materialize([*ASSETS, *CHECKS], selection=["training_labels"], resources=pipeline_resources(settings),
                           instance=instance).output_for_node("training_labels")
    positives = set(table.loc[table["label"] == 1, "file"])
    monkeypatch.setattr(promotion_tasks, "validation_scores", scores)
    result = _retrain(settings, instance, epochs=2)  # other settings: a new version
    monkeypatch.setattr(promotion_tasks, "validation_scores", real_scores)

    assert not result.success
    refusals, errors = _run_outcome(result)  # what `detector-pipeline run` tells the operator
    assert [r.split(":")[0] for r in refusals] == ["check detector_not_worse_than_promoted failed"] and not errors
    checks = {e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data
              for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}
    gate = checks["detector_not_worse_than_promoted"]
    assert not gate.passed and "worse than the promoted model" in gate.metadata["why"].value
    assert registry.read_promoted(Path(settings.data_dir))["version"] == promoted["version"]
    assert json.loads((Path(settings.data_dir) / "registry" / "promoted.json").read_text())["version"] == promoted["version"]


def test_scoring_a_folder_with_the_promoted_model(trained):
    settings, instance = trained
    result = dg.materialize([*ASSETS, *CHECKS], selection=["feed_scores"], resources=pipeline_resources(settings),
                            instance=instance)
    summary = result.output_for_node("feed_scores")
    assert summary["images"] == 64 and summary["model_version"] == registry.read_promoted(Path(settings.data_dir))["version"]


def test_ablation_study_reports_a_verdict_per_claim(trained, monkeypatch):
    settings, instance = trained
    from detector_pipeline.evaluation import ablations

    monkeypatch.setattr(ablations, "SEEDS", (0, 1))  # two seeds keep the test short; the real study runs five
    result = dg.materialize([*ASSETS, *CHECKS], selection=["ablation_study"], resources=pipeline_resources(settings),
                            instance=instance)
    summary = result.output_for_node("ablation_study")
    # the tiny profile makes no training changes: the recipe-as-written arm would repeat the first one
    assert list(summary["runs"]) == ["pos_weight_native", "plain_bce_native", "pos_weight_resized"]
    assert [len(runs) for runs in summary["runs"].values()] == [2, 2, 2]
    # Every finished training was kept: the study again trains nothing and comes to the same result.
    monkeypatch.setattr(ablation_tasks, "train_detector", lambda *a, **k: pytest.fail("a finished training ran again"))
    again = dg.materialize([*ASSETS, *CHECKS], selection=["ablation_study"], resources=pipeline_resources(settings),
                           instance=instance).output_for_node("ablation_study")
    assert again["claims"] == summary["claims"]
    monkeypatch.undo()
    by_seed = {v: {r["seed"]: r["test_roc_auc"] for r in rows} for v, rows in summary["runs"].items()}
    assert [c["b"] for c in summary["claims"]] == ["plain_bce_native", "pos_weight_resized", "probe",
                                                    "recipe_as_written"]
    assert summary["claims"][3]["verdict"] == "not applicable"
    for claim in summary["claims"][:3]:  # each verdict follows from its own runs and interval
        other = {s: summary["probe_test_roc_auc"] for s in (0, 1)} if claim["b"] == "probe" else by_seed[claim["b"]]
        assert claim["difference"] == pytest.approx(np.mean([by_seed[claim["a"]][s] - other[s] for s in (0, 1)]))
        low, high = claim["ci95"]
        assert claim["verdict"] == ("confirmed" if low > 0 else "refuted" if high < 0 else "inconclusive")
    report = dg.materialize([*ASSETS, *CHECKS], selection=["evaluation_report"], resources=pipeline_resources(settings),
                            instance=instance).output_for_node("evaluation_report")
    assert report.ablations["claims"] == summary["claims"]


def test_a_moved_data_folder_keeps_working(trained, tmp_path, monkeypatch, capsys):
    """Records name files relative to the data folder: a copy elsewhere (a volume mounted at another
    path, a second machine) scores with the promoted model, and no record names the old place."""
    settings, _ = trained
    old, new = Path(settings.data_dir), tmp_path / "moved" / "data"
    shutil.copytree(old, new, symlinks=True)
    shutil.rmtree(old)
    monkeypatch.setenv("DETECTOR_DATA_DIR", str(new))
    assert main(["score", str(Path(settings.feed_dir) / "000.png"), "--out", str(tmp_path / "s.parquet"), "--quiet"]) == 0
    scored = pd.read_parquet(tmp_path / "s.parquet")
    assert scored["error"].isna().all() and scored["model_version"].tolist() == [registry.read_promoted(new)["version"]]
    records = [p for p in new.rglob("*") if p.suffix in (".json", ".jsonl", ".md") and p.is_file()]
    assert records and not [p for p in records if str(old) in p.read_text()]


def test_a_missing_promoted_model_counts_as_none_and_the_new_one_is_promoted(trained):
    settings, instance = trained
    data = Path(settings.data_dir)
    missing = registry.read_promoted(data)
    shutil.rmtree(data / missing["folder"])
    result = _retrain(settings, instance, epochs=2)  # other settings: a new version
    assert result.success
    gate = {e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data
            for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}["detector_not_worse_than_promoted"]
    assert gate.passed and gate.metadata["why"].value.startswith("no usable promoted model")
    assert missing["version"] in gate.metadata["why"].value
    promoted = registry.read_promoted(data)
    assert promoted["version"] == result.output_for_node("detector").version != missing["version"]
    assert promoted["previous_version"] == missing["version"]


def test_a_rollback_by_promote_is_what_the_graph_scores_with_next(trained, monkeypatch, capsys):
    """`promote VERSION` moves the pointer between runs: the assets that load promoted_detector score
    with that version next, and the instance records the move as an event of promoted_detector that
    the version's lineage shows."""
    settings, instance = trained
    data = Path(settings.data_dir)
    first = registry.read_promoted(data)["version"]
    second = _retrain(settings, instance, epochs=2).output_for_node("detector").version  # promoted or refused
    target = first if registry.read_promoted(data)["version"] == second else second
    monkeypatch.setenv("DETECTOR_DATA_DIR", str(data))
    monkeypatch.setenv("DAGSTER_HOME", instance.root_directory)
    assert main(["promote", target, "--force", "rollback drill"]) == 0
    capsys.readouterr()

    scored = dg.materialize([*ASSETS, *CHECKS], selection=["feed_scores"], resources=pipeline_resources(settings),
                            instance=instance).output_for_node("feed_scores")
    assert scored["model_version"] == target
    event = instance.get_latest_materialization_event(dg.AssetKey("promoted_detector"))
    assert event.run_id == "" and event.asset_materialization.metadata["version"].value == target
    assert event.asset_materialization.metadata["forced"].value == "rollback drill"
    assert "promote" in [p["by"] for p in lineage(instance, target)["decisions"]["promotions"]]


def test_a_check_that_errors_is_an_error_not_a_refusal(trained, monkeypatch):
    settings, instance = trained
    before = registry.read_promoted(Path(settings.data_dir))["version"]

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(promotion_tasks, "compare_with_promoted", broken)
    result = _retrain(settings, instance, epochs=2)  # other settings: a new version
    refusals, errors = _run_outcome(result)
    assert not result.success and not refusals
    assert errors == ["step detector_detector_not_worse_than_promoted errored: RuntimeError: disk on fire"]
    assert registry.read_promoted(Path(settings.data_dir))["version"] == before


def test_inputs_from_different_labels_fail_fast_naming_both_versions(trained, monkeypatch):
    """A retrain stopped after training_labels: the next step that reads it beside the older embeddings
    must refuse at once (before any training), naming both versions and the job that realigns them."""
    settings, instance = trained
    old = dg.materialize([*ASSETS, *CHECKS], selection=["training_labels"], resources=pipeline_resources(settings),
                         instance=instance).output_for_node("training_labels")
    _add_batch(settings, instance, "b-new", n=8)
    new = dg.materialize([*ASSETS, *CHECKS], selection=["training_labels"], resources=pipeline_resources(settings),
                         instance=instance).output_for_node("training_labels")
    versions = labels_version(new), labels_version(old)
    for module in (ablation_tasks, model_tasks):
        monkeypatch.setattr(module, "train_detector", lambda *a, **k: pytest.fail("trained on mismatched inputs"))
    for asset in ("probe_model", "ablation_study"):
        result = dg.materialize([*ASSETS, *CHECKS], selection=[asset], resources=pipeline_resources(settings),
                                instance=instance, raise_on_error=False)
        _, errors = _run_outcome(result)
        assert len(errors) == 1 and "MismatchedInputs" in errors[0], errors
        assert all(v in errors[0] for v in versions) and "`retrain`" in errors[0]


@pytest.fixture
def demo_shaped(tmp_path):
    """Base labels with every optional column the demo set has; the instance has trained on them."""
    yield from trained_on(settings_for(write_tiny_dataset(tmp_path / "labels", demo_columns=True), tmp_path), tmp_path)


def test_a_batch_with_only_the_required_columns_retrains_and_promotes(demo_shaped):
    settings, instance = demo_shaped
    folder = Path(settings.incoming_dir) / "minimal"
    labels = write_tiny_dataset(folder, n=16, seed=11)
    pd.read_parquet(labels)[["image_path", "ai_score"]].to_parquet(labels, index=False)
    (folder / READY_MARKER).touch()
    instance.add_dynamic_partitions("label_batches", ["minimal"])
    assert dg.materialize([*ASSETS, *CHECKS], selection=["teacher_labels"], partition_key="minimal",
                          resources=pipeline_resources(settings), instance=instance).success
    result = _retrain(settings, instance, epochs=2)  # other settings: a new version
    assert result.success, _run_outcome(result)
    table = result.output_for_node("training_labels")
    minimal = table["batch"] == "minimal"
    assert table.loc[minimal, "is_ai"].isna().all() and not table.loc[minimal, "family_held_out"].any()
    report = result.output_for_node("evaluation_report").sections()
    families = {row["family"] for row in report["slices"]["family_vs_real"]["detector"]}
    assert families <= {"checker", "held_out_gen"}  # rows without ground truth are neither real nor AI
    # seen and held-out generators apart, and the real images of sources kept out of training
    held_out = report["detector"]["test_held_out"]
    assert held_out["n"] > held_out["positives"] > 0 and "held-out" in held_out["what"]
    assert report["detector"]["test_in_distribution"]["n"] < report["n_test"]
    real_held_out = report["slices"]["real_only_false_positive_rate"]["held_out_sources"]
    assert real_held_out["n_real"] > 0 and real_held_out["false_positive_rate"]["value"] is not None
    assert registry.read_promoted(Path(settings.data_dir))["version"] == result.output_for_node("detector").version
    walk = lineage(instance, result.output_for_node("detector").version)
    assert [b["batch"] for b in walk["label_batches"]] == ["base", "minimal"]
