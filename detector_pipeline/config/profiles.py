"""Named settings: `full` is the article's recipe for a GPU; `demo` runs the whole chain on 2 CPU cores
with the real pretrained weights that can be had offline; `tiny` is for tests."""

from dataclasses import asdict, dataclass, replace
from pathlib import Path

from detector_pipeline.models.backbones import BackboneSpec
from detector_pipeline.models.offline_weights import CLIP_VIT_B16, MOBILENET_V2


# The probe's features in a 12-block ViT-B: the class token after every second block from the fourth
# on. On the demo they beat the final embedding alone by about 0.015 ROC-AUC on seen generators and
# 0.08 on the held-out one (README: Evaluation).
VIT_B_FEATURE_BLOCKS = (3, 5, 7, 9, 11)


@dataclass(frozen=True)
class Profile:
    name: str
    embedding: BackboneSpec
    detector: BackboneSpec
    embed_batch_size: int = 64
    train_batch_size: int = 32
    infer_batch_size: int = 64  # scoring and evaluation
    epochs: int = 5
    max_steps_per_epoch: int | None = None
    crop_size: int = 224
    lr: float = 1e-4
    weight_decay: float = 0.05
    num_workers: int = 2
    seed: int = 0
    amp: str = "auto"  # "auto" (bf16 where native), "bf16" or "fp32"
    device: str = "auto"
    # Training changes beyond the article's recipe (training.settings.RECIPE_CHOICES), as name/value pairs.
    training: tuple[tuple[str, object], ...] = ()

    def as_dict(self) -> dict:
        return asdict(self)

    def with_overrides(self, **overrides) -> "Profile":
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def with_random_weights(self) -> "Profile":
        """The same architectures and code path, both backbones randomly initialised (every output
        then says so): how the tests run the `full` profile where no model hub can be reached."""
        return replace(self, embedding=replace(self.embedding, weights="random", file=None),
                       detector=replace(self.detector, weights="random", file=None))


def get_profile(name: str, weights_dir: Path) -> Profile:
    if name == "full":
        return Profile(
            "full",
            embedding=BackboneSpec("vit_base_patch14_dinov2.lvd142m", "hub", model_kwargs={"img_size": 224},
                                   feature_blocks=VIT_B_FEATURE_BLOCKS),
            detector=BackboneSpec("convnext_tiny", "hub"),
            embed_batch_size=256, train_batch_size=64, infer_batch_size=256, epochs=5, num_workers=8,
        )
    if name == "demo":
        return Profile(
            "demo",
            # int8: 2.4x the images/s of eager fp32 on 2 AVX2 cores, per-image cosine >= 0.99 (README: Performance).
            embedding=BackboneSpec(CLIP_VIT_B16.architecture, "file", str(weights_dir / CLIP_VIT_B16.filename),
                                   engine="int8", feature_blocks=VIT_B_FEATURE_BLOCKS),
            detector=BackboneSpec(MOBILENET_V2.architecture, "file", str(weights_dir / MOBILENET_V2.filename)),
            # 2 cores: decoding ~330 px JPEGs is cheap next to the models, so loader workers would only
            # compete with them; small inference batches stay in the CPU's caches (README: Performance).
            embed_batch_size=8, train_batch_size=32, infer_batch_size=16, epochs=3, num_workers=0,
        )
    if name == "tiny":
        return Profile(
            "tiny",
            embedding=BackboneSpec("test_vit", "random", feature_blocks=(1, 3, 5)),
            detector=BackboneSpec("test_convnext", "random"),
            embed_batch_size=16, train_batch_size=8, infer_batch_size=16, epochs=3, crop_size=64, num_workers=0, lr=1e-3,
        )
    raise ValueError(f"unknown profile {name!r}: use full, demo or tiny")


PROFILE_NAMES = ("full", "demo", "tiny")
