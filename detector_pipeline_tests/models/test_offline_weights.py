"""The converted offline weights are the real pretrained models (`make test` fetches them first)."""

from pathlib import Path

import numpy as np
import pytest
import timm
import torch
from PIL import Image

from detector_pipeline.models.backbones import BackboneSpec, create_backbone, data_config
from detector_pipeline.models.offline_weights import CLIP_VIT_B16, MOBILENET_V2
from detector_pipeline_tests.helpers import PROJECT_ROOT

WEIGHTS = PROJECT_ROOT / "data" / "weights"
LADYBIRD = Path(__file__).parents[1] / "assets" / "ladybird.jpg"
IMAGENET_LADYBUG = 301


def _weights(spec) -> Path:
    path = WEIGHTS / spec.filename
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make weights` (make test does) before these tests")
    return path


@torch.inference_mode()
def test_mobilenet_v2_ranks_ladybug_first_on_the_ladybird_photo():
    model = create_backbone(BackboneSpec(MOBILENET_V2.architecture, "file", str(_weights(MOBILENET_V2))), 1000).eval()
    transform = timm.data.create_transform(**data_config(model))
    probs = model(transform(Image.open(LADYBIRD).convert("RGB"))[None]).softmax(-1)[0]
    assert int(probs.argmax()) == IMAGENET_LADYBUG
    assert float(probs[IMAGENET_LADYBUG]) > 0.5


@torch.inference_mode()
def test_clip_vit_b16_loads_every_key_and_embeds_similar_views_alike():
    path = _weights(CLIP_VIT_B16)
    model = timm.create_model(CLIP_VIT_B16.architecture, pretrained=True, num_classes=512,
                              pretrained_cfg_overlay={"file": str(path)}).eval()
    from safetensors.torch import load_file

    assert set(load_file(str(path))) == set(model.state_dict())
    transform = timm.data.create_transform(**data_config(model))
    image = Image.open(LADYBIRD).convert("RGB")
    noise = Image.fromarray(np.random.default_rng(0).integers(0, 255, (256, 256, 3), dtype=np.uint8))
    views = torch.stack([transform(image), transform(image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)), transform(noise)])
    e = torch.nn.functional.normalize(model(views), dim=-1)
    assert float(e[0] @ e[1]) > 0.9 > float(e[0] @ e[2])
