"""People in the loop, in-process on tiny data: verdicts become training labels, the regression gate
refuses a candidate trained on labels that contradict them and passes one trained with them, the
shadow comparison counts the feed decisions a challenger would change, and `promote` prints it."""

import re
import shutil
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from detector_pipeline.cli import main
from detector_pipeline.data.batches import READY_MARKER
from detector_pipeline.defs.assets import ASSETS, CHECKS
from detector_pipeline.defs.resources import pipeline_resources
from detector_pipeline.defs.schedules import verdict_files_since_model
from detector_pipeline.registry import pointer as registry
from detector_pipeline.review import verdicts

pytestmark = pytest.mark.slow  # three trainings of the tiny chain

RETRAIN = ["training_labels", "label_stats", "embeddings", "probe_model", "detector", "offtheshelf_baseline",
           "evaluation_report", "shadow_comparison", "promoted_detector"]
GATE = "detector_keeps_human_verdicts"


def _materialize(settings, instance, selection, partition_key=None, **kwargs):
    return dg.materialize([*ASSETS, *CHECKS], selection=selection, partition_key=partition_key,
                          resources=pipeline_resources(settings), instance=instance, raise_on_error=False, **kwargs)


def _checks(result) -> dict:
    return {e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data
            for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}


def _relabel(settings, instance, name: str, flip: bool) -> None:
    """Every base image again in a new label batch: the teacher's scores, or their opposite."""
    base = Path(settings.labels_path)
    folder = Path(settings.incoming_dir) / name
    shutil.copytree(base.parent / "img", folder / "img")
    table = pd.read_parquet(base)
    if flip:
        table["ai_score"] = 1 - table["ai_score"]
    table.to_parquet(folder / "labels.parquet", index=False)
    (folder / READY_MARKER).touch()
    instance.add_dynamic_partitions("label_batches", [name])
    assert _materialize(settings, instance, ["teacher_labels"], name).success


def _verdict_file(settings, instance) -> tuple[pd.DataFrame, str]:
    """Ten test-split images judged by a person (their truth), one `unsure`, plus bad rows; validated."""
    labels = instance.get_latest_materialization_event(dg.AssetKey("training_labels"))
    assert labels is not None
    from detector_pipeline.definitions import defs  # noqa: F401 (only to check the project loads)

    table = dg.materialize([*ASSETS, *CHECKS], selection=["training_labels"], resources=pipeline_resources(settings),
                           instance=instance).output_for_node("training_labels")
    test = table[table["split"] == "test"].sort_values("sha256").head(11)
    rows = [{"sha256": h, "verdict": "ai" if score >= 0.5 else "real", "note": "checked", "reviewer": "ana"}
            for h, score in zip(test["sha256"], test["teacher_score"])]
    rows[-1]["verdict"] = "unsure"
    bad = [{"sha256": "f" * 64, "verdict": "ai"}, {"sha256": rows[0]["sha256"], "verdict": "nope"},
           {"sha256": test["sha256"].iloc[1], "verdict": "ai" if rows[1]["verdict"] == "real" else "real"}]
    folder = settings.data / verdicts.VERDICTS_DIR
    folder.mkdir(parents=True)
    pd.DataFrame(rows + bad).to_csv(folder / "team.csv", index=False)
    instance.add_dynamic_partitions("verdict_files", ["team.csv"])
    result = _materialize(settings, instance, ["reviewed_labels"], "team.csv")
    assert result.success
    return result.output_for_node("reviewed_labels"), test


def test_verdicts_override_labels_and_gate_a_candidate_that_contradicts_them(trained, monkeypatch, capsys):
    settings, instance = trained
    first = registry.read_promoted(settings.data)["version"]
    accepted, test = _verdict_file(settings, instance)
    # The conflicting row quarantines its image's good row too; the unknown image and the bad value go.
    quarantine = pd.read_parquet(next((settings.data / "quarantine/verdicts/team.csv").glob("*.parquet")))
    assert len(accepted) == 10 and len(quarantine) == 4
    assert any(r.startswith(f"unknown image {'f' * 64}") for r in quarantine["reason"])
    assert any("conflicting verdict" in r for r in quarantine["reason"])
    assert set(accepted["verdict"]) == {"ai", "real", "unsure"} and set(accepted["reviewer"]) == {"ana"}

    # The champion scores the feed first: the shadow comparison needs its decisions.
    assert _materialize(settings, instance, ["feed_scores"]).success

    _relabel(settings, instance, "flipped", flip=True)  # a teacher that is wrong everywhere
    refused = _materialize(settings, instance, RETRAIN, run_config={"ops": {"detector": {"config": {"epochs": 2}}}})
    labels = refused.output_for_node("training_labels")
    overridden = labels[labels["overridden"]]
    assert sorted(overridden["sha256"]) == sorted(accepted.loc[accepted["verdict"] != "unsure", "sha256"])
    assert (overridden["ai_score"] == overridden["verdict"].map({"ai": 1.0, "real": 0.0})).all()
    assert (overridden["teacher_score"] != overridden["ai_score"]).all()  # the flipped teacher contradicted them
    gate = _checks(refused)[GATE]
    assert not gate.passed and gate.metadata["why"].value.startswith(f"worse than promoted detector {first}")
    named = gate.metadata["newly_wrong"].value
    assert sum(f in named for f in overridden["file"].map(lambda f: Path(f).name)) >= 1
    assert "data:image/png;base64," in gate.metadata["newly_wrong_images"].value
    assert registry.read_promoted(settings.data)["version"] == first  # refused: nothing promoted

    _relabel(settings, instance, "restored", flip=False)  # the teacher's own scores again, verdicts on top
    passed = _materialize(settings, instance, RETRAIN, run_config={"ops": {"detector": {"config": {"epochs": 3}}}})
    assert passed.success, [c.metadata["why"].value for c in _checks(passed).values() if not c.passed]
    assert _checks(passed)[GATE].passed
    assert verdict_files_since_model(instance) == []  # this model has seen every verdict file
    candidate = passed.output_for_node("detector").version
    shadow = passed.output_for_node("shadow_comparison")
    assert shadow.champion == first and shadow.challenger == candidate and shadow.feed_images == 64
    assert shadow.changed == shadow.real_to_ai + shadow.ai_to_real
    assert shadow.line().startswith(f"would change {shadow.changed} of 64 feed decisions: {shadow.real_to_ai} real→AI, ")
    assert registry.read_promoted(settings.data)["version"] == candidate
    promoted_event = instance.get_latest_materialization_event(dg.AssetKey("promoted_detector")).asset_materialization
    assert promoted_event.metadata["shadow"].value == shadow.line()

    # An operator moves the pointer back: promote prints the gate on verdicts and the shadow line.
    monkeypatch.setenv("DETECTOR_DATA_DIR", str(settings.data))
    monkeypatch.setenv("DETECTOR_PROFILE", "tiny")
    monkeypatch.setattr("detector_pipeline.cli.runs.dagster_instance", lambda: instance)
    assert _materialize(settings, instance, ["feed_scores"]).success  # the new champion's feed
    assert main(["promote", first]) == 0
    out = capsys.readouterr().out
    assert "gate, human verdicts: not worse than promoted detector" in out and "on the 9 images people judged" in out
    assert re.search(r"would change \d+ of 64 feed decisions: \d+ real→AI, \d+ AI→real", out) and f"(champion {candidate}, challenger {first})" in out
