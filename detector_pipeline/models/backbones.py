"""Creating timm models from one of three weight sources: the hub, a local file, or random init."""

from dataclasses import asdict, dataclass, field
from pathlib import Path

import timm
import torch

WEIGHT_SOURCES = ("hub", "file", "random")
# How a frozen backbone runs for inference: "eager" (fp32, or bf16 autocast where native) or "int8"
# (models/quantized.py: calibrated int8 Linear layers, for CPUs). Training always runs eager.
ENGINES = ("eager", "int8")


class WeightsUnavailable(RuntimeError):
    """Pretrained weights could not be had; the message says what to do instead."""


@dataclass(frozen=True)
class BackboneSpec:
    architecture: str  # a timm model name, optionally with a pretrained tag: "convnext_tiny.fb_in1k"
    weights: str = "hub"  # "hub" | "file" | "random"
    file: str | None = None  # for weights="file": a .safetensors (or .pth/.bin) state dict in timm's keys
    model_kwargs: dict = field(default_factory=dict)
    engine: str = "eager"
    # Embeddings only: the class token after each of these transformer blocks (0-based), concatenated,
    # instead of the final pooled embedding. Early and middle blocks keep the low-level traces that the
    # last one abstracts away (RINE, ECCV 2024); they come out of the same forward pass. Empty: pooled.
    feature_blocks: tuple[int, ...] = ()

    def __post_init__(self):
        # timm returns the blocks once each, in order: the record says them that way too
        object.__setattr__(self, "feature_blocks", tuple(sorted({int(b) for b in self.feature_blocks})))
        if self.weights not in WEIGHT_SOURCES:
            raise ValueError(f"weights must be one of {WEIGHT_SOURCES}, got {self.weights!r}")
        if self.engine not in ENGINES:
            raise ValueError(f"engine must be one of {ENGINES}, got {self.engine!r}")
        if self.weights == "file" and not self.file:
            raise ValueError("weights='file' needs a file")

    @property
    def is_random(self) -> bool:
        return self.weights == "random"

    def describe(self) -> str:
        engine = "" if self.engine == "eager" else f", {self.engine} inference"
        if self.feature_blocks:
            engine += f", class tokens of blocks {', '.join(map(str, self.feature_blocks))}"
        if self.weights == "hub":
            return f"{self.architecture} (pretrained, model hub{engine})"
        if self.weights == "file":
            return f"{self.architecture} (pretrained, local file {Path(self.file).name}{engine})"
        return f"{self.architecture} (RANDOMLY INITIALISED: no pretrained weights{engine})"

    def key(self) -> str:
        """Identifies the weights and the engine, for caches: architecture + source + file name (+ engine)."""
        source = Path(self.file).name if self.weights == "file" else self.weights
        extra = "-".join(f"{k}{v}" for k, v in sorted(self.model_kwargs.items()))
        engine = "" if self.engine == "eager" else self.engine
        blocks = "blocks" + "-".join(map(str, self.feature_blocks)) if self.feature_blocks else ""
        return "__".join(p for p in (self.architecture, source, extra, engine, blocks) if p).replace("/", "_")

    def as_dict(self) -> dict:
        return asdict(self)

    def record(self) -> dict:
        """As model records keep it: the weights file by name only, so no machine's path is recorded
        (the weights folder is a setting of the machine that runs the pipeline)."""
        return {**asdict(self), "file": Path(self.file).name if self.file else None}


def create_backbone(spec: BackboneSpec, num_classes: int) -> torch.nn.Module:
    """num_classes=0 gives the pooled features (embeddings); 1 gives a single-logit classifier."""
    kwargs = dict(spec.model_kwargs, num_classes=num_classes)
    overlay = {}
    if "img_size" in spec.model_kwargs:
        # The preprocessing must follow the size the model was built at, not the pretrained config's
        # (DINOv2's says 518 px; the full profile builds it at 224).
        size = spec.model_kwargs["img_size"]
        overlay["input_size"] = (3, size, size) if isinstance(size, int) else (3, *size)
    if spec.weights == "random":
        return timm.create_model(spec.architecture, pretrained=False, pretrained_cfg_overlay=overlay or None, **kwargs)
    if spec.weights == "file":
        path = Path(spec.file)
        if not path.is_file():
            raise WeightsUnavailable(
                f"weights file {path} for {spec.architecture} does not exist. Run `detector-pipeline weights "
                f"fetch` for the offline weights, or use weights='hub' or weights='random'."
            )
        return timm.create_model(spec.architecture, pretrained=True, pretrained_cfg_overlay={**overlay, "file": str(path)},
                                 **kwargs)
    try:
        return timm.create_model(spec.architecture, pretrained=True, pretrained_cfg_overlay=overlay or None, **kwargs)
    except Exception as exc:  # hub errors come in many types: offline, DNS, HTTP, missing cache
        raise WeightsUnavailable(
            f"could not get pretrained weights for {spec.architecture} from the model hub "
            f"({type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}). "
            f"Use weights='file' with a local weights file (timm's pretrained_cfg_overlay=dict(file=...)), "
            f"or weights='random' (every report then marks the model as randomly initialised)."
        ) from None


def data_config(model: torch.nn.Module) -> dict:
    """timm's preprocessing for a model: input size, mean, std, interpolation, crop."""
    return timm.data.resolve_data_config({}, model=model)
