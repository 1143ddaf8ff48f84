"""How a detector is trained: the settings (merged from a profile and the run's config in one place),
and what a training returns."""

from dataclasses import asdict, dataclass, field

import torch

from detector_pipeline.config.profiles import Profile
from detector_pipeline.models.detector import Preprocessing

# Part of every checkpoint's key: a checkpoint written by an older training loop is never resumed.
TRAINING_CODE_VERSION = "3"  # 3: schedule, crops per image, head learning rate, EMA, augmentation, epoch kept


SCHEDULES = ("constant", "cosine")
KEEP = ("best_val", "last")
# The training choices a profile may set beyond the article's recipe (Profile.training).
RECIPE_CHOICES = ("schedule", "warmup_epochs", "crops_per_image", "head_lr_scale", "ema_decay", "augment", "keep")


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
    # What the article's recipe leaves open; the defaults are the article's recipe, a profile sets the
    # changes that measured better (README: Evaluation).
    schedule: str = "constant"  # or "cosine": linear warm-up over `warmup_epochs`, then cosine decay
    warmup_epochs: float = 0.0
    crops_per_image: int = 1  # random native crops of one decoded image per epoch (a batch: batch_size crops)
    head_lr_scale: float = 1.0  # the new classifier's learning rate, as a multiple of `lr`
    ema_decay: float | None = None  # an exponential moving average of the weights is validated and kept
    augment: bool = False  # JPEG recompression and a little blur, as feeds process images; never a resize
    keep: str = "best_val"  # or "last": the last epoch's weights, not the best on a small validation split

    def __post_init__(self):
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, got {self.schedule!r}")
        if self.keep not in KEEP:
            raise ValueError(f"keep must be one of {KEEP}, got {self.keep!r}")
        if self.crops_per_image < 1:
            raise ValueError(f"crops_per_image must be at least 1, got {self.crops_per_image}")
        if self.ema_decay is not None and not 0 < self.ema_decay < 1:
            raise ValueError(f"ema_decay must lie between 0 and 1, got {self.ema_decay}")
        if self.warmup_epochs < 0 or self.head_lr_scale <= 0:
            raise ValueError("warmup_epochs must be at least 0 and head_lr_scale above 0")

    @classmethod
    def from_profile(cls, profile: Profile, pos_weight: float | None, native_crops: bool = True,
                     processes: int = 1, recipe_only: bool = False) -> "TrainSettings":
        """The one place a profile (already merged with the run's overrides) becomes training settings.
        `recipe_only`: the article's recipe as written, without the profile's training changes (the
        ablation that measures them)."""
        unknown = {name for name, _ in profile.training} - set(RECIPE_CHOICES)
        if unknown:
            raise ValueError(f"profile {profile.name!r} sets {sorted(unknown)} in `training`: only {RECIPE_CHOICES} "
                             "belong there")
        return cls(epochs=profile.epochs, batch_size=profile.train_batch_size, lr=profile.lr,
                   weight_decay=profile.weight_decay, pos_weight=pos_weight, crop_size=profile.crop_size,
                   num_workers=profile.num_workers, seed=profile.seed, amp=profile.amp,
                   max_steps_per_epoch=profile.max_steps_per_epoch, native_crops=native_crops, processes=processes,
                   **({} if recipe_only else dict(profile.training)))

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
