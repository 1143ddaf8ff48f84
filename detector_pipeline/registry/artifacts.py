"""Models as safetensors + JSON at content-addressed paths, published durably (registry/durable.py)."""

import hashlib
import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from detector_pipeline.errors import ArtifactError
from detector_pipeline.registry.durable import (  # noqa: F401 (where writers take them from)
    append_line,
    atomic_path,
    write_bytes_atomic,
    write_json_atomic,
)
from detector_pipeline.registry.locks import file_lock  # noqa: F401 (where the caches take it from)


class CorruptArtifact(ArtifactError, ValueError):
    """A model file that is missing, truncated, tampered with, or not what its config says."""


def content_version(state: dict[str, torch.Tensor], config: dict) -> str:
    """A version id from the weights and the config that made them. How the run went (wall-clock
    times, whether it resumed from a checkpoint) is recorded in the config but left out, so the same
    training on the same labels gives the same id."""
    digest = hashlib.sha256(json.dumps(_identity(config), sort_keys=True, default=str).encode())
    for name in sorted(state):
        digest.update(name.encode())
        digest.update(state[name].detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:16]


def _identity(config: dict) -> dict:
    identity = {k: v for k, v in config.items() if k not in ("version", "resumed_from_epoch")}
    if "history" in identity:
        identity["history"] = [{k: v for k, v in epoch.items() if k != "seconds"} for epoch in identity["history"]]
    return identity


def save_model(root: Path, kind: str, state: dict[str, torch.Tensor], config: dict) -> tuple[str, Path]:
    """Saves `<root>/<kind>/<version>/{model.safetensors,config.json}`; returns (version, folder)."""
    state = {k: v.detach().cpu().contiguous() for k, v in state.items()}
    version = content_version(state, config)
    folder = root / kind / version
    with atomic_path(folder / "model.safetensors") as tmp:
        save_file(state, str(tmp))
    write_json_atomic(folder / "config.json", {**config, "version": version})
    return version, folder


def load_model_files(folder: Path) -> tuple[dict[str, torch.Tensor], dict]:
    try:
        config = json.loads((folder / "config.json").read_text())
        state = load_file(str(folder / "model.safetensors"))
    except FileNotFoundError as exc:
        raise CorruptArtifact(f"model files missing: {exc.filename} does not exist; retrain it, or promote "
                              "another version (detector-pipeline models, then promote VERSION)") from None
    except (SafetensorError, json.JSONDecodeError, OSError) as exc:
        raise CorruptArtifact(f"cannot load model from {folder}: {exc}; retrain it, or promote another "
                              "version (detector-pipeline models, then promote VERSION)") from None
    if content_version(state, config) != config.get("version"):
        raise CorruptArtifact(f"model in {folder} does not match its version id {config.get('version')}: "
                              "model.safetensors or config.json was changed; retrain it, or promote another version")
    return state, config
