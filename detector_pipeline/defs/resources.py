"""Where the data is and which profile runs (PipelineSettings), and where the promoted model is
(PromotionPointer, promoted_detector's storage): the resources every run gets (pipeline_resources)."""

import subprocess
from pathlib import Path

import dagster as dg
import pandas as pd

from detector_pipeline.config.environment import Environment, read_environment
from detector_pipeline.config.profiles import Profile, get_profile
from detector_pipeline.data.batches import BatchLocation, batch_location
from detector_pipeline.locations import PROJECT_ROOT
from detector_pipeline.registry import pointer
from detector_pipeline.registry.artifacts import write_bytes_atomic
from detector_pipeline.review import verdicts
from detector_pipeline.registry.records import PromotedModel


_DEFAULTS = read_environment({})  # the values with no variable set: one set of defaults


class PipelineSettings(dg.ConfigurableResource):
    """profile: `demo` (2 CPU cores, offline weights), `full` (the article's recipe, GPU) or `tiny`."""

    profile: str = _DEFAULTS.profile
    labels_path: str = str(_DEFAULTS.labels_path)
    images_root: str = str(_DEFAULTS.images_root)
    data_dir: str = str(_DEFAULTS.data_dir)
    weights_dir: str = str(_DEFAULTS.weights_dir)
    device: str = _DEFAULTS.device
    incoming_dir: str = str(_DEFAULTS.incoming_dir)
    feed_dir: str = str(_DEFAULTS.feed_dir)
    # The one seed: the split, the probe's folds, training and the model card all take this value.
    seed: int = 0
    target_precision: float = 0.95
    # Hugging Face image-classification models to compare against, as "model_id:positive_label", comma-separated.
    offtheshelf_models: str = "Organika/sdxl-detector:artificial"

    def resolved_profile(self) -> Profile:
        return get_profile(self.profile, Path(self.weights_dir)).with_overrides(device=self.device, seed=self.seed)

    @property
    def data(self) -> Path:
        return Path(self.data_dir)

    def batch_location(self, batch: str) -> BatchLocation:
        base = BatchLocation(Path(self.labels_path), Path(self.images_root))
        return batch_location(batch, base, Path(self.incoming_dir))

    @classmethod
    def of(cls, environment: Environment) -> "PipelineSettings":
        """The resource as the environment sets it (config/environment.py: the variables and defaults)."""
        return cls(profile=environment.profile, labels_path=str(environment.labels_path),
                   images_root=str(environment.images_root), data_dir=str(environment.data_dir),
                   weights_dir=str(environment.weights_dir), device=environment.device,
                   incoming_dir=str(environment.incoming_dir), feed_dir=str(environment.feed_dir))


class PromotionPointer(dg.ConfigurableIOManager):
    """promoted_detector's storage is the promotion pointer itself (registry/pointer.py): a run that
    promotes moves it, `detector-pipeline promote` moves it between runs, and what loads it downstream
    (feed_scores, batch_evaluation, the ONNX export) gets the model the feed is scored with now: None
    when nothing was ever promoted, an operator error when the pointer can't be read."""

    settings: dg.ResourceDependency[PipelineSettings]

    def handle_output(self, context: dg.OutputContext, obj: PromotedModel) -> None:
        record = pointer.promote(self.settings.data, obj.record())
        context.add_output_metadata({"promoted_at": record["promoted_at"],
                                     "previous_version": record["previous_version"] or "none"})

    def load_input(self, context: dg.InputContext) -> PromotedModel | None:
        return pointer.read_promoted_model(self.settings.data)


class ValidatedVerdicts(dg.ConfigurableIOManager):
    """reviewed_labels' storage: one parquet per verdict file (verdicts.validated_path). What
    reads all of them (training_labels, the gate on verdicts) gets the files validated so far: a file
    registered but not yet validated (its run queued, or failed) is left out with a warning, so one
    verdict file never stops a retrain."""

    settings: dg.ResourceDependency[PipelineSettings]

    def handle_output(self, context: dg.OutputContext, obj: pd.DataFrame) -> None:
        write_bytes_atomic(verdicts.validated_path(self.settings.data, context.partition_key), obj.to_parquet(index=False))

    def load_input(self, context: dg.InputContext) -> dict[str, pd.DataFrame]:
        keys = context.asset_partition_keys if context.has_asset_partitions else []
        tables, missing = verdicts.read_validated(self.settings.data, list(keys))
        if missing:
            context.log.warning(f"verdict files not validated (or their validated copy unreadable), left out: "
                                f"{', '.join(missing)}; run validate_verdicts for them")
        return tables


def pipeline_resources(settings: PipelineSettings) -> dict:
    """The resources of the code location, and of every test that materializes its assets."""
    return {"settings": settings, "promotion_pointer": PromotionPointer(settings=settings),
            "validated_verdicts": ValidatedVerdicts(settings=settings)}


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None
