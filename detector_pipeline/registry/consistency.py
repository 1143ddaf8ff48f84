"""Inputs that belong together: every model, table and score set read side by side must come from the
same labels version, or a step would combine rows of different runs (and fail late, or worse, not)."""

from detector_pipeline.errors import MismatchedInputs

REALIGN = "run the job `retrain` (UI: Jobs > retrain, or `detector-pipeline run`) to rebuild them from the same labels"


def require_same_labels(labels_version: str, **made_from: str | None) -> None:
    """labels_version: the current training_labels'; made_from: input name -> the labels version that
    input was made from (None: it does not say, made before versions were recorded)."""
    off = {name: version for name, version in made_from.items() if version != labels_version}
    if off:
        parts = ", ".join(f"{name} from {version or 'an unrecorded version'}" for name, version in sorted(off.items()))
        raise MismatchedInputs(f"inputs come from different labels: training_labels is {labels_version}, but {parts}; "
                               f"{REALIGN}")
