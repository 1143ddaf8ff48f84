"""Fine-tuning the detector end to end, nanoGPT style: one readable loop, checkpoints every epoch,
resumable after a crash, the model chosen by validation ROC-AUC."""

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data.distributed import DistributedSampler

from detector_pipeline.artifacts import atomic_path, write_json_atomic
from detector_pipeline.backbones import BackboneSpec, create_backbone, data_config
from detector_pipeline.datasets import ImageFiles, make_loader
from detector_pipeline.device import autocast_dtype, to_device
from detector_pipeline.metrics import roc_auc
from detector_pipeline.transforms import BatchNormalize, detector_transform, resized_transform


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


@dataclass
class TrainResult:
    state: dict[str, torch.Tensor]
    best_epoch: int
    best_val_roc_auc: float | None
    history: list[dict] = field(default_factory=list)
    resumed_from_epoch: int | None = None
    final_state: dict[str, torch.Tensor] | None = None  # the last epoch's weights (the state may be an earlier epoch's)


def image_transform(settings: TrainSettings, train: bool):
    """Per image, in the loader: PIL -> uint8 crop (native or resized, as the settings say)."""
    make = detector_transform if settings.native_crops else resized_transform
    return make(settings.crop_size, train)


def batch_normalizer(model: torch.nn.Module, device: torch.device) -> BatchNormalize:
    """Per batch, on the device: uint8 -> the model's normalized float input."""
    cfg = data_config(model)
    return BatchNormalize(cfg["mean"], cfg["std"], device)


@torch.inference_mode()
def predict(model: torch.nn.Module, paths: Sequence[Path], settings: TrainSettings, device: torch.device,
            perturb: Callable | None = None, batch_size: int | None = None) -> np.ndarray:
    """P(AI) per image; `perturb` (PIL -> PIL) is applied to each decoded image first. `batch_size`
    defaults to twice the training batch."""
    transform = image_transform(settings, train=False)
    if perturb is not None:
        transform = _Then(perturb, transform)
    loader = make_loader(ImageFiles(paths, None, transform), batch_size or settings.batch_size * 2,
                         settings.num_workers, device)
    normalize = batch_normalizer(model, device)
    dtype = autocast_dtype(device, settings.amp)
    model.eval()
    out = []
    for x in loader:
        with torch.autocast(device.type, dtype=dtype or torch.float32, enabled=dtype is not None):
            out.append(torch.sigmoid(model(normalize(x)).float().squeeze(1)).cpu().numpy())
    return np.concatenate(out) if out else np.zeros(0, np.float32)


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


class _Then:
    """first, then second: a picklable composition for DataLoader workers."""

    def __init__(self, first: Callable, second: Callable):
        self.first, self.second = first, second

    def __call__(self, x):
        return self.second(self.first(x))


def train_detector(
    spec: BackboneSpec,
    train_paths: Sequence[Path], train_scores: Sequence[float],
    val_paths: Sequence[Path], val_labels: Sequence[int],
    settings: TrainSettings, device: torch.device,
    checkpoint_dir: Path | None = None, log: Callable[[str], None] = print,
) -> TrainResult:
    """Single process, or one rank of a torchrun job when torch.distributed is initialised: then the
    model is wrapped in DistributedDataParallel, each rank reads its share of the training images, and
    rank 0 alone validates and writes checkpoints (the ranks' weights stay identical)."""
    torch.manual_seed(settings.seed)
    model = to_device(init_binary_head(create_backbone(spec, num_classes=1)), device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    pos_weight = None if settings.pos_weight is None else torch.tensor(settings.pos_weight, device=device)
    criterion = torch.nn.BCEWithLogitsLoss(pos_weight=pos_weight)
    dataset = ImageFiles(train_paths, train_scores, image_transform(settings, train=True))
    distributed = torch.distributed.is_available() and torch.distributed.is_initialized()
    sampler = DistributedSampler(dataset, shuffle=True, seed=settings.seed) if distributed else None
    lead = not distributed or torch.distributed.get_rank() == 0
    loader = make_loader(dataset, settings.batch_size, settings.num_workers, device, shuffle=True,
                         seed=settings.seed, sampler=sampler)
    normalize = batch_normalizer(model, device)
    trained = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None) \
        if distributed else model
    dtype = autocast_dtype(device, settings.amp)

    start_epoch, best_epoch, best_auc, history, resumed = 0, -1, None, [], None
    best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    if checkpoint_dir is not None and (checkpoint_dir / "last.json").exists():
        meta = load_checkpoint(checkpoint_dir, model, optimizer)
        start_epoch, best_epoch, best_auc, history = meta["epoch"] + 1, meta["best_epoch"], meta["best_val_roc_auc"], meta["history"]
        best_state = load_file(str(checkpoint_dir / "best.safetensors"))
        resumed = meta["epoch"]
        log(f"resumed from the checkpoint of epoch {meta['epoch']} in {checkpoint_dir}")

    for epoch in range(start_epoch, settings.epochs):
        torch.manual_seed(settings.seed + epoch)  # the same crops whether or not the run was resumed
        if sampler is not None:
            sampler.set_epoch(epoch)
        else:
            loader.generator.manual_seed(settings.seed + epoch)
        model.train()
        t0, losses = time.time(), []
        for step, (x, y) in enumerate(loader):
            if settings.max_steps_per_epoch is not None and step >= settings.max_steps_per_epoch:
                break
            losses.append(train_step(trained, optimizer, criterion, normalize(x), y.to(device, non_blocking=True), dtype))
        if not lead:
            continue
        val_scores = predict(model, val_paths, settings, device)
        val_auc = roc_auc(np.asarray(val_labels), val_scores)
        history.append({"epoch": epoch, "train_loss": float(np.mean(losses)) if losses else None,
                        "val_roc_auc": val_auc, "seconds": round(time.time() - t0, 1), "steps": len(losses)})
        log(f"epoch {epoch}: train loss {history[-1]['train_loss']:.4f}, val ROC-AUC {val_auc}, {history[-1]['seconds']} s")
        if best_auc is None or (val_auc is not None and val_auc > best_auc):
            best_epoch, best_auc = epoch, val_auc
            best_state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        if checkpoint_dir is not None:
            save_checkpoint(checkpoint_dir, model, optimizer, best_state,
                            {"epoch": epoch, "best_epoch": best_epoch, "best_val_roc_auc": best_auc, "history": history})
    final_state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    return TrainResult(best_state, best_epoch, best_auc, history, resumed, final_state)


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


def save_checkpoint(folder: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    best_state: dict[str, torch.Tensor], meta: dict) -> None:
    """Model and optimizer tensors as safetensors, the rest as JSON; the JSON is written last, so a
    checkpoint is complete exactly when its last.json names its epoch."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    opt = optimizer.state_dict()
    for idx, state in opt["state"].items():
        for name, value in state.items():
            tensors[f"optim.{idx}.{name}"] = torch.as_tensor(value).detach().cpu().contiguous()
    with atomic_path(folder / "best.safetensors") as tmp:
        save_file({k: v.contiguous() for k, v in best_state.items()}, str(tmp))
    with atomic_path(folder / "last.safetensors") as tmp:
        save_file(tensors, str(tmp))
    write_json_atomic(folder / "last.json", {**meta, "param_groups": opt["param_groups"]})


def load_checkpoint(folder: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> dict:
    meta = json.loads((folder / "last.json").read_text())
    tensors = load_file(str(folder / "last.safetensors"))
    model.load_state_dict({k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")})
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    return meta


def settings_dict(settings: TrainSettings) -> dict:
    return asdict(settings)
