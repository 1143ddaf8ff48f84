"""A saved model version as the assets hand it to each other: where it is (relative to the data folder)
and what made it. config.json holds the same fields, less the folder."""

from dataclasses import asdict, dataclass, field, fields


@dataclass(frozen=True)
class ModelRecord:
    kind: str  # "probe" or "detector"
    version: str  # content hash of the weights and this record (registry.artifacts.content_version)
    folder: str  # relative to the data folder: models/<kind>/<version>
    backbone: dict  # BackboneSpec.record()
    backbone_description: str
    randomly_initialised: bool
    labels_version: str  # of the training_labels it was made from
    seed: int | None = None
    settings: dict = field(default_factory=dict)  # detector: TrainSettings as trained
    preprocessing: dict = field(default_factory=dict)  # detector: models.detector.Preprocessing
    metrics: dict = field(default_factory=dict)  # probe: ranking metrics per split
    selection: dict = field(default_factory=dict)  # probe: how its C was chosen (models.probe.ProbeSelection)
    best_epoch: int | None = None
    best_val_roc_auc: float | None = None
    history: list[dict] = field(default_factory=list)
    resumed_from_epoch: int | None = None

    @classmethod
    def saved(cls, version: str, folder: str, config: dict) -> "ModelRecord":
        """From a config.json (which also holds the version) and the folder it lies in."""
        known = {f.name for f in fields(cls)} - {"version", "folder"}
        return cls(version=version, folder=folder, **{k: v for k, v in config.items() if k in known})

    def config(self) -> dict:
        """What config.json records (the version is added on save; the folder is where it lies)."""
        return {k: v for k, v in asdict(self).items() if k not in ("version", "folder")}
