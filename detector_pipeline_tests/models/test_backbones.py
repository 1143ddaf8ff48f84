import pytest
import torch

from detector_pipeline.models.backbones import BackboneSpec, WeightsUnavailable, create_backbone


def test_unreachable_hub_gives_a_clear_message_naming_the_alternatives():
    with pytest.raises(WeightsUnavailable) as info:
        create_backbone(BackboneSpec("test_convnext", "hub"), num_classes=1)
    message = str(info.value)
    assert "weights='file'" in message and "weights='random'" in message


def test_missing_local_file_says_how_to_get_one(tmp_path):
    with pytest.raises(WeightsUnavailable, match="weights fetch"):
        create_backbone(BackboneSpec("test_convnext", "file", str(tmp_path / "none.safetensors")), num_classes=1)


def test_local_file_weights_are_loaded(tmp_path):
    from safetensors.torch import save_file

    source = create_backbone(BackboneSpec("test_convnext", "random"), num_classes=1)
    path = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(path))
    loaded = create_backbone(BackboneSpec("test_convnext", "file", str(path)), num_classes=1)
    key = next(k for k in source.state_dict() if k.endswith("weight"))
    assert torch.equal(source.state_dict()[key], loaded.state_dict()[key])


def test_random_backbone_is_labelled_as_such():
    spec = BackboneSpec("test_vit", "random")
    assert spec.is_random and "RANDOMLY INITIALISED" in spec.describe()
