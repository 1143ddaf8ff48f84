import torch

from detector_pipeline.backbones import BackboneSpec, create_backbone
from detector_pipeline.training import init_binary_head


def test_fresh_binary_head_starts_with_small_logits():
    torch.manual_seed(0)
    x = torch.rand(4, 3, 96, 96)
    raw = create_backbone(BackboneSpec("mobilenetv2_100", "random"), num_classes=1).eval()
    with torch.no_grad():
        before = raw(x).abs().max()
        after = init_binary_head(raw)(x).abs().max()
    assert after < 1.0
    assert after < before  # timm's fan-out init of a one-output head gives large logits
