"""Fine-tuning the detector end to end, nanoGPT style: one readable loop, checkpoints every epoch,
resumable after a crash; the learning rate a function of the step, an optional moving average of the
weights, and the epoch kept by validation ROC-AUC or the last one."""

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data.distributed import DistributedSampler

from timm.utils import ModelEmaV3

from detector_pipeline.config.device import autocast_dtype, to_device
from detector_pipeline.data.datasets import ImageFiles, make_loader
from detector_pipeline.data.images import decode_rgb
from detector_pipeline.data.transforms import Repeated
from detector_pipeline.evaluation.metrics import roc_auc
from detector_pipeline.models.backbones import BackboneSpec, create_backbone
from detector_pipeline.models.scorer import DetectorScorer
from detector_pipeline.registry.durable import require_free_space
from detector_pipeline.training.checkpoints import has_checkpoint, load_checkpoint, save_checkpoint
from detector_pipeline.training.settings import TrainResult, TrainSettings


def init_binary_head(model: torch.nn.Module, std: float = 0.01) -> torch.nn.Module:
    """A fresh single-logit head starts near zero. Some timm families initialise the classifier from its
    fan-out (EfficientNet/MobileNet: uniform within 1/sqrt(num_classes)), which for one output means
    weights of order 1 and logits in the tens: the sigmoid saturates and the first epochs are spent
    undoing it."""
    head = model.get_classifier()
    if isinstance(head, torch.nn.Linear):
        torch.nn.init.normal_(head.weight, std=std)
        torch.nn.init.zeros_(head.bias)
    return model


@dataclass
class _Progress:
    """Where a training stands: restored from a checkpoint, or fresh."""

    best_state: dict[str, torch.Tensor]
    start_epoch: int = 0
    best_epoch: int = -1
    best_auc: float | None = None
    history: list[dict] = field(default_factory=list)
    resumed: int | None = None

    def record(self, epoch: int) -> dict:
        return {"epoch": epoch, "best_epoch": self.best_epoch, "best_val_roc_auc": self.best_auc,
                "history": self.history}


def train_detector(
    spec: BackboneSpec,
    train_paths: Sequence[Path], train_scores: Sequence[float],
    val_paths: Sequence[Path], val_labels: Sequence[int],
    settings: TrainSettings, device: torch.device,
    checkpoint_dir: Path | None = None, log: Callable[[str], None] = print,
    restart_copies: Path | None = None,
) -> TrainResult:
    """Single process, or one rank of a torchrun job when torch.distributed is initialised: then the
    model is wrapped in DistributedDataParallel, each rank reads its share of the training images, and
    rank 0 alone validates and writes checkpoints (the ranks' weights stay identical)."""
    torch.manual_seed(settings.seed)
    model = to_device(init_binary_head(create_backbone(spec, num_classes=1)), device)
    if checkpoint_dir is not None:
        weights = sum(t.numel() * t.element_size() for t in model.state_dict().values())
        # the best and last checkpoints, the optimizer's two moments, the EMA copy, the saved model
        require_free_space(checkpoint_dir, 6 * weights + 64 * 2**20, "training")
    optimizer = torch.optim.AdamW(param_groups(model, settings.head_lr_scale), lr=settings.lr,
                                  weight_decay=settings.weight_decay)
    ema = ModelEmaV3(model, decay=settings.ema_decay, use_warmup=True) if settings.ema_decay else None
    pos_weight = None if settings.pos_weight is None else torch.tensor(settings.pos_weight, device=device)
    criterion = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    preprocessing = settings.preprocessing(spec.architecture)
    transform = preprocessing.transform(train=True, augment=settings.augment)
    # Several crops share one decode, so the whole image is decoded; one crop decodes only its region.
    dataset = ImageFiles(train_paths, train_scores,
                         Repeated(transform, settings.crops_per_image) if settings.crops_per_image > 1 else transform,
                         decode_rgb if settings.crops_per_image > 1 else
                         preprocessing.decoder(train=True, restart_copies=restart_copies))
    distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
    sampler = DistributedSampler(dataset, shuffle=True, seed=settings.seed) if distributed else None
    lead = not distributed or torch.distributed.get_rank() == 0
    # A step sees `batch_size` crops whatever their number per image: more crops, more optimiser steps.
    loader = make_loader(dataset, max(1, settings.batch_size // settings.crops_per_image), settings.num_workers,
                         device, shuffle=True, seed=settings.seed, sampler=sampler)
    normalize = preprocessing.normalizer(device)
    trained = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None) \
        if distributed else model
    dtype = autocast_dtype(device, settings.amp)
    progress = _restore(checkpoint_dir, model, optimizer, ema, log)
    steps_per_epoch = len(loader) if settings.max_steps_per_epoch is None else min(len(loader),
                                                                                    settings.max_steps_per_epoch)

    for epoch in range(progress.start_epoch, settings.epochs):
        torch.manual_seed(settings.seed + epoch)  # the same crops whether or not the run was resumed
        if sampler is not None:
            sampler.set_epoch(epoch)
        else:
            loader.generator.manual_seed(settings.seed + epoch)
        model.train()
        t0, losses = time.time(), []
        for step, (x, y) in enumerate(loader):
            if step >= steps_per_epoch:
                break
            if x.dim() == 5:  # several crops per image: one row each, each with its image's target
                y = y.repeat_interleave(x.shape[1])
                x = x.flatten(0, 1)
            set_learning_rate(optimizer, settings, epoch * steps_per_epoch + step, steps_per_epoch)
            losses.append(train_step(trained, optimizer, criterion, normalize(x), y.to(device, non_blocking=True), dtype))
            if ema is not None:
                ema.update(model, step=epoch * steps_per_epoch + step)
        if not lead:
            continue
        evaluated = model if ema is None else ema.module
        val_scores = DetectorScorer.of_module(evaluated, preprocessing, device, settings.amp, settings.batch_size * 2,
                                              settings.num_workers).score(val_paths)
        _end_epoch(progress, epoch, evaluated, losses, roc_auc(np.asarray(val_labels), val_scores), t0, log,
                   keep_last=settings.keep == "last")
        if checkpoint_dir is not None:
            save_checkpoint(checkpoint_dir, model, optimizer, progress.best_state, progress.record(epoch),
                            None if ema is None else ema.module)
    final = model if ema is None else ema.module
    final_state = {k: v.detach().cpu() for k, v in final.state_dict().items()}
    return TrainResult(progress.best_state, progress.best_epoch, progress.best_auc, progress.history, progress.resumed,
                       final_state)


def param_groups(model: torch.nn.Module, head_lr_scale: float) -> list[dict]:
    """The pretrained body and the new head, each with its learning rate's multiple of the base."""
    head = {id(p) for p in model.get_classifier().parameters()}
    body = [p for p in model.parameters() if id(p) not in head]
    return [{"params": body, "lr_scale": 1.0},
            {"params": [p for p in model.parameters() if id(p) in head], "lr_scale": head_lr_scale}]


def learning_rate_factor(step: int, total_steps: int, warmup_steps: int, schedule: str) -> float:
    """The base learning rate's multiple at `step`: constant, or a linear warm-up then a cosine decay
    to a hundredth of the peak at the last step."""
    if schedule == "constant":
        return 1.0
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
    return 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def set_learning_rate(optimizer: torch.optim.Optimizer, settings: TrainSettings, step: int, steps_per_epoch: int) -> None:
    factor = learning_rate_factor(step, settings.epochs * steps_per_epoch,
                                  round(settings.warmup_epochs * steps_per_epoch), settings.schedule)
    for group in optimizer.param_groups:
        group["lr"] = settings.lr * factor * group.get("lr_scale", 1.0)


def _restore(checkpoint_dir: Path | None, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
             ema: ModelEmaV3 | None, log: Callable[[str], None]) -> _Progress:
    if not has_checkpoint(checkpoint_dir):
        return _Progress({k: v.detach().cpu().clone() for k, v in model.state_dict().items()})
    meta = load_checkpoint(checkpoint_dir, model, optimizer, None if ema is None else ema.module)
    log(f"resumed from the checkpoint of epoch {meta['epoch']} in {checkpoint_dir}")
    return _Progress(meta["best_state"], meta["epoch"] + 1, meta["best_epoch"], meta["best_val_roc_auc"],
                     meta["history"], meta["epoch"])


def _end_epoch(progress: _Progress, epoch: int, model: torch.nn.Module, losses: list[float], val_auc: float | None,
               started: float, log: Callable[[str], None], keep_last: bool = False) -> None:
    """Records the epoch, and keeps its weights when validation ranks best so far (`keep_last`: always)."""
    progress.history.append({"epoch": epoch, "train_loss": float(np.mean(losses)) if losses else None,
                             "val_roc_auc": val_auc, "seconds": round(time.time() - started, 1), "steps": len(losses)})
    log(f"epoch {epoch}: train loss {progress.history[-1]['train_loss']:.4f}, val ROC-AUC {val_auc}, "
        f"{progress.history[-1]['seconds']} s")
    if keep_last or progress.best_auc is None or (val_auc is not None and val_auc > progress.best_auc):
        progress.best_epoch, progress.best_auc = epoch, val_auc
        progress.best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}


def train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, criterion: torch.nn.Module,
               x: torch.Tensor, y: torch.Tensor, dtype: torch.dtype | None) -> float:
    """One optimisation step on a normalized batch; the loss. `dtype`: autocast dtype, None for fp32."""
    with torch.autocast(x.device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
        logits = model(x).squeeze(1)
    loss = criterion(logits.float(), y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item()
