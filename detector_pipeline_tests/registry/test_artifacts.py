import os

import pytest
import torch

from detector_pipeline.registry.artifacts import CorruptArtifact, atomic_path, load_model_files, save_model


def test_model_round_trip_is_content_addressed(tmp_path):
    state = {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3)}
    version, folder = save_model(tmp_path, "probe", state, {"seed": 1})
    again, _ = save_model(tmp_path, "probe", state, {"seed": 1})
    other, _ = save_model(tmp_path, "probe", state, {"seed": 2})
    assert version == again != other
    loaded, config = load_model_files(folder)
    assert torch.equal(loaded["w"], state["w"]) and config["seed"] == 1


def test_version_id_ignores_wall_clock_time_but_not_the_training_record(tmp_path):
    state = {"w": torch.ones(3)}
    def config(seconds, loss):
        return {"seed": 1, "history": [{"epoch": 0, "train_loss": loss, "seconds": seconds}]}
    first, folder = save_model(tmp_path, "detector", state, config(41.2, 0.5))
    rerun, _ = save_model(tmp_path, "detector", state, config(57.9, 0.5))
    other, _ = save_model(tmp_path, "detector", state, config(41.2, 0.6))
    assert first == rerun != other
    assert load_model_files(folder)[1]["history"][0]["seconds"] == 57.9  # the rerun's record, same folder


def test_truncated_model_file_is_refused(tmp_path):
    _, folder = save_model(tmp_path, "detector", {"w": torch.ones(100)}, {})
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CorruptArtifact):
        load_model_files(folder)


def test_tampered_weights_are_refused(tmp_path):
    _, folder = save_model(tmp_path, "detector", {"w": torch.ones(100)}, {})
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(100)}, str(folder / "model.safetensors"))
    with pytest.raises(CorruptArtifact, match="does not match"):
        load_model_files(folder)


def test_atomic_path_leaves_nothing_when_the_writer_fails(tmp_path):
    target = tmp_path / "report.json"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash")
    assert not target.exists()
    assert os.listdir(tmp_path) == []


def test_zero_dimensional_tensors_such_as_batchnorm_counters_are_saved(tmp_path):
    state = {"bn.num_batches_tracked": torch.tensor(7), "w": torch.ones(2)}
    _, folder = save_model(tmp_path, "detector", state, {})
    loaded, _ = load_model_files(folder)
    assert int(loaded["bn.num_batches_tracked"]) == 7
