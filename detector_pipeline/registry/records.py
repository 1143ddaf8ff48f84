"""What the assets hand each other about models: a saved model version (ModelRecord: where it is,
relative to the data folder, and what made it; config.json holds the same fields, less the folder),
an evaluation report (EvaluationReport) and the promotion pointer (PromotedModel)."""

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


@dataclass(frozen=True)
class PromotedModel:
    """The promotion pointer as the assets hand it on: the version the feed is scored with, where it
    lies, and the operating point chosen by the evaluation report that `report_id` names (its folder
    `reports/<report_id>` also holds the test scores and the images the model learnt from)."""

    version: str
    folder: str  # relative to the data folder
    threshold: float
    operating_point: dict
    report_id: str | None
    run_id: str | None = None  # the run that promoted it; None when an operator did (`promote`)
    promoted_by: str | None = None
    promoted_at: str | None = None  # set by the pointer when it moves
    previous_version: str | None = None
    forced: str | None = None  # the reason an operator gave for skipping the gate

    @classmethod
    def of_record(cls, record: dict) -> "PromotedModel":
        """From promoted.json; pointers written before `report_id` had the name `report`."""
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in record.items() if k in known}
        values.setdefault("report_id", record.get("report"))
        values.setdefault("operating_point", {"threshold": record["threshold"]})
        return cls(**values)

    def record(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class EvaluationReport:
    """evaluation_report as the assets hand it on: the report's sections by name (report.json holds
    the same, evaluation.report.build_report makes them) and its folder, relative to the data folder
    (registry.reports: report.md, the figures, the test scores, the images trained on)."""

    report_id: str  # "<detector_version>-<probe_version>": the pair the report judged
    detector_version: str
    probe_version: str
    folder: str
    n_test: int  # images of the whole test split
    counts: dict  # images per split and test subset
    label_stats: dict
    probe: dict  # per split: ranking metrics; the two test sets with intervals
    detector: dict
    operating_point: dict  # the threshold chosen on validation and its figures on test
    positive_definition: str
    created_by: dict  # run, git commit, profile
    metrics: dict | None
    calibration: dict | None
    slices: dict | None
    robustness: dict | None
    shortcut_baselines: dict | None
    ablations: dict | None
    model_card: dict

    @classmethod
    def of(cls, sections: dict, folder: str) -> "EvaluationReport":
        return cls(folder=folder, **sections)

    def sections(self) -> dict:
        """report.json, as written."""
        return {k: v for k, v in asdict(self).items() if k != "folder"}

    @property
    def threshold(self) -> float:
        return self.operating_point["threshold"]
