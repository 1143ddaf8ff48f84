"""Checkpoints every epoch, so that a training killed mid-way resumes where it stopped."""

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from detector_pipeline.registry.artifacts import atomic_path, write_json_atomic


def save_checkpoint(folder: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    best_state: dict[str, torch.Tensor], meta: dict, ema: torch.nn.Module | None = None) -> None:
    """Model, optimizer (and moving-average) tensors as safetensors, the rest as JSON; the JSON is
    written last, so a checkpoint is complete exactly when its last.json names its epoch."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    if ema is not None:
        tensors.update({f"ema.{k}": v.detach().cpu().contiguous() for k, v in ema.state_dict().items()})
    opt = optimizer.state_dict()
    for idx, state in opt["state"].items():
        for name, value in state.items():
            tensors[f"optim.{idx}.{name}"] = torch.as_tensor(value).detach().cpu().contiguous()
    with atomic_path(folder / "best.safetensors") as tmp:
        save_file({k: v.contiguous() for k, v in best_state.items()}, str(tmp))
    with atomic_path(folder / "last.safetensors") as tmp:
        save_file(tensors, str(tmp))
    write_json_atomic(folder / "last.json", {**meta, "param_groups": opt["param_groups"]})


def has_checkpoint(folder: Path | None) -> bool:
    return folder is not None and (folder / "last.json").exists()


def load_checkpoint(folder: Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    ema: torch.nn.Module | None = None) -> dict:
    """Restores model, optimizer (and moving average); returns the checkpoint's record, with the best
    epoch's weights under "best_state"."""
    meta = json.loads((folder / "last.json").read_text())
    tensors = load_file(str(folder / "last.safetensors"))
    model.load_state_dict({k.removeprefix("model."): v for k, v in tensors.items() if k.startswith("model.")})
    if ema is not None:
        ema.load_state_dict({k.removeprefix("ema."): v for k, v in tensors.items() if k.startswith("ema.")})
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    return {**meta, "best_state": load_file(str(folder / "best.safetensors"))}
