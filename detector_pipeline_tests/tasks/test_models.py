"""Following one parameter through the tree: pos_weight from label_stats into the loss, and the crop
settings from a profile into the transform that scoring uses."""

import json
from pathlib import Path

import dagster as dg
import pytest
import torch

from detector_pipeline.data.batches import BASE_BATCH
from detector_pipeline.data.transforms import NativeCrop
from detector_pipeline.defs.assets import ASSETS
from detector_pipeline.defs.resources import pipeline_resources
from detector_pipeline.models.scorer import DetectorScorer
from detector_pipeline.training import loop


class _SpyLoss(torch.nn.BCEWithLogitsLoss):
    seen: list = []

    def __init__(self, pos_weight=None, **kwargs):
        super().__init__(pos_weight=pos_weight, **kwargs)
        _SpyLoss.seen.append(None if pos_weight is None else float(pos_weight))


@pytest.mark.slow  # trains the detector in a Dagster run, twice
@pytest.mark.parametrize("native_crops", [True, False])
def test_pos_weight_reaches_the_loss_and_the_crop_settings_reach_scoring(tiny_settings, monkeypatch,
                                                                         native_crops):
    monkeypatch.setattr(loop.torch.nn, "BCEWithLogitsLoss", _SpyLoss)
    _SpyLoss.seen = []
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions("label_batches", [BASE_BATCH])
    assert dg.materialize(ASSETS, selection=["teacher_labels"], partition_key=BASE_BATCH,
                          resources=pipeline_resources(tiny_settings), instance=instance).success
    result = dg.materialize(ASSETS, selection=["training_labels", "label_stats", "detector"],  # no gate checks
                            resources=pipeline_resources(tiny_settings), instance=instance, run_config={
                                "ops": {"detector": {"config": {"epochs": 1, "native_crops": native_crops}}}})
    stats, detector = result.output_for_node("label_stats"), result.output_for_node("detector")
    p = stats.train.share_at_or_above_0_5
    assert stats.pos_weight == pytest.approx((1 - p) / p) and stats.pos_weight > 1
    assert _SpyLoss.seen == [pytest.approx(stats.pos_weight)]  # the loss got the train split's pos_weight
    assert detector.settings["pos_weight"] == stats.pos_weight

    folder = Path(tiny_settings.data_dir) / detector.folder
    saved = json.loads((folder / "config.json").read_text())["preprocessing"]
    assert saved["crop_size"] == tiny_settings.resolved_profile().crop_size == 64
    assert saved["native_crops"] is native_crops
    transform = DetectorScorer.load(folder, "torch", torch.device("cpu")).preprocessing.transform(train=False)
    assert isinstance(transform.transforms[0], NativeCrop) is native_crops
