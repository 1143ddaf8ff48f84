"""Frozen-backbone embeddings: a randomly initialised backbone is the same in every chunk and run."""

import pandas as pd
import torch

from detector_pipeline.models.backbones import BackboneSpec
from detector_pipeline.models.embeddings import embed_images
from detector_pipeline_tests.conftest import write_tiny_dataset


def test_a_random_backbone_embeds_the_same_way_whatever_ran_before(tmp_path):
    labels = write_tiny_dataset(tmp_path / "data", n=4)
    todo = pd.DataFrame({"file": sorted(str(p) for p in (labels.parent / "img").glob("*.png"))})
    spec = BackboneSpec("test_vit", "random")
    first = embed_images(spec, todo, 2, torch.device("cpu"))
    torch.rand(1000)  # other work in the same process moves the global random state
    again = embed_images(spec, todo, 2, torch.device("cpu"))
    assert first.shape[0] == 4 and (first == again).all()
