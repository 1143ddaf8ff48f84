"""How a detector is trained: the settings (merged from a profile and the run's config in one place),
and what a training returns."""

from dataclasses import asdict, dataclass, field

import torch

from detector_pipeline.config.profiles import Profile
from detector_pipeline.models.detector import Preprocessing

# Part of every checkpoint's key: a checkpoint written by an older training loop is never resumed.
TRAINING_CODE_VERSION = "2"  # 2: single-logit head initialised near zero


@dataclass(frozen=True)
class TrainSettings:
    epochs: int
    batch_size: int
    lr: float
    weight_decay: float
    pos_weight: float | None  # None: plain BCE
    crop_size: int = 224
    num_workers: int = 0
    seed: int = 0
    amp: str = "auto"
    max_steps_per_epoch: int | None = None
    native_crops: bool = True  # False: resize the whole image (the ablation)
    processes: int = 1  # >1: DistributedDataParallel under torchrun; batch_size is per process

    @classmethod
    def from_profile(cls, profile: Profile, pos_weight: float | None, native_crops: bool = True,
                     processes: int = 1) -> "TrainSettings":
        """The one place a profile (already merged with the run's overrides) becomes training settings."""
        return cls(epochs=profile.epochs, batch_size=profile.train_batch_size, lr=profile.lr,
                   weight_decay=profile.weight_decay, pos_weight=pos_weight, crop_size=profile.crop_size,
                   num_workers=profile.num_workers, seed=profile.seed, amp=profile.amp,
                   max_steps_per_epoch=profile.max_steps_per_epoch, native_crops=native_crops, processes=processes)

    def preprocessing(self, architecture: str) -> Preprocessing:
        return Preprocessing.for_backbone(architecture, self.crop_size, self.native_crops)


@dataclass
class TrainResult:
    state: dict[str, torch.Tensor]
    best_epoch: int
    best_val_roc_auc: float | None
    history: list[dict] = field(default_factory=list)
    resumed_from_epoch: int | None = None
    final_state: dict[str, torch.Tensor] | None = None  # the last epoch's weights (the state may be an earlier epoch's)


def settings_dict(settings: TrainSettings) -> dict:
    return asdict(settings)
