"""Multi-process fine-tuning: the detector asset launches torchrun (2 processes, gloo on the CPU)
through Dagster Pipes; DistributedDataParallel keeps both replicas identical."""

from pathlib import Path

import dagster as dg
import pytest
import torch

from detector_pipeline.data.batches import BASE_BATCH
from detector_pipeline.defs.assets import ASSETS, CHECKS
from detector_pipeline.defs.resources import pipeline_resources
from detector_pipeline.registry import artifacts

pytestmark = pytest.mark.slow  # two training processes started by torchrun, in Dagster runs


def test_detector_trains_on_two_processes_through_pipes(tiny_settings):
    with dg.DagsterInstance.ephemeral() as instance:
        _train_on_two_processes(instance, tiny_settings)


def _train_on_two_processes(instance, tiny_settings):
    instance.add_dynamic_partitions("label_batches", [BASE_BATCH])
    resources = pipeline_resources(tiny_settings)
    assert dg.materialize([*ASSETS, *CHECKS], selection=["teacher_labels"], partition_key=BASE_BATCH,
                          resources=resources, instance=instance).success
    result = dg.materialize(  # the gate checks need the probe too: not part of this test
        ASSETS, selection=["training_labels", "label_stats", "detector"], resources=resources,
        instance=instance, run_config={"ops": {"detector": {"config": {"processes": 2, "epochs": 2}}}},
    )
    assert result.success
    detector = result.output_for_node("detector")
    assert detector.settings["processes"] == 2
    assert [h["epoch"] for h in detector.history] == [0, 1]
    assert detector.best_val_roc_auc is not None
    # The saved weights load into the model (verified against their version) and give finite scores.
    state, config = artifacts.load_model_files(Path(tiny_settings.data_dir) / detector.folder)
    assert config["version"] == detector.version
    assert all(torch.isfinite(v).all() for v in state.values() if v.is_floating_point())
    # Rank 0's log lines reached the Dagster run through Pipes.
    logs = [record.user_message for record in instance.all_logs(result.run_id)]
    assert any("rank 0 of 2" in line for line in logs)
