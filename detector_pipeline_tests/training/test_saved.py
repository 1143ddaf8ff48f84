"""A detector's config.json, as the one function writes it: what scoring and the records read back, and
a version id that follows the weights and the training, not how long it took or whether it resumed."""

import json

import torch

from detector_pipeline.models.backbones import BackboneSpec, create_backbone
from detector_pipeline.models.detector import Preprocessing
from detector_pipeline.models.scorer import DetectorScorer
from detector_pipeline.registry.records import ModelRecord
from detector_pipeline.training.saved import save_detector
from detector_pipeline.training.settings import TrainResult, TrainSettings

SPEC = BackboneSpec("test_convnext", "random")
SETTINGS = TrainSettings(epochs=2, batch_size=4, lr=1e-4, weight_decay=0.05, pos_weight=3.0, crop_size=64,
                         native_crops=False, seed=7)


def _result(state, resumed=None, seconds=1.0, best_epoch=1) -> TrainResult:
    history = [{"epoch": e, "train_loss": 0.5, "val_roc_auc": 0.7, "seconds": seconds, "steps": 3} for e in range(2)]
    return TrainResult(state, best_epoch, 0.7, history, resumed)


def test_the_saved_config_holds_what_scoring_and_the_record_read(tmp_path):
    torch.manual_seed(0)
    state = create_backbone(SPEC, num_classes=1).state_dict()
    version, folder, _ = save_detector(tmp_path, state, SPEC, SETTINGS, "abc", _result(state))
    config = json.loads((folder / "config.json").read_text())
    assert config["version"] == version == folder.name
    assert Preprocessing.of_config(config) == Preprocessing.for_backbone("test_convnext", 64, native_crops=False)
    assert DetectorScorer.load(folder, "torch", "cpu").preprocessing == Preprocessing.of_config(config)
    record = ModelRecord.saved(version, "models/detector/" + version, config)
    assert (record.kind, record.labels_version, record.seed, record.best_epoch) == ("detector", "abc", 7, 1)
    assert record.settings["pos_weight"] == 3.0 and record.randomly_initialised


def test_the_version_follows_the_training_not_its_timing(tmp_path):
    torch.manual_seed(0)
    state = create_backbone(SPEC, num_classes=1).state_dict()
    first = save_detector(tmp_path / "a", state, SPEC, SETTINGS, "abc", _result(state))[0]
    resumed = save_detector(tmp_path / "b", state, SPEC, SETTINGS, "abc", _result(state, resumed=0, seconds=9.0))[0]
    other_epoch = save_detector(tmp_path / "c", state, SPEC, SETTINGS, "abc", _result(state, best_epoch=0))[0]
    other_labels = save_detector(tmp_path / "d", state, SPEC, SETTINGS, "abd", _result(state))[0]
    untrained = save_detector(tmp_path / "e", state, SPEC, SETTINGS, "abc")[0]
    assert first == resumed
    assert len({first, other_epoch, other_labels, untrained}) == 4
