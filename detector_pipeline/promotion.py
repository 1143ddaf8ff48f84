"""`detector-pipeline promote VERSION`: the gate's comparison with the promoted model, run outside a
Dagster run on the validation split that the instance's latest training_labels hold."""

import logging
from pathlib import Path

import dagster as dg

from detector_pipeline.errors import ArtifactError, PromotionRefused


def check_against_promoted(instance: dg.DagsterInstance, data_dir: Path, candidate: dict) -> dict:
    from detector_pipeline import steps
    from detector_pipeline.definitions import defs
    from detector_pipeline.resources import PipelineSettings

    missing = ("run the chain first (detector-pipeline run), or promote with --force REASON")
    if instance.get_latest_materialization_event(dg.AssetKey("training_labels")) is None:
        raise ArtifactError(f"no training_labels to compare on in this Dagster instance (DAGSTER_HOME): {missing}")
    quiet = logging.getLogger("dagster")
    level, quiet.level = quiet.level, logging.WARNING  # its "Loading file from" line is no news to an operator
    try:
        labels = defs.load_asset_value("training_labels", instance=instance)
    except OSError as exc:
        raise ArtifactError(f"the stored training_labels can't be read ({exc}): {missing}") from None
    finally:
        quiet.level = level
    verdict = steps.compare_with_promoted(labels, candidate, PipelineSettings.from_env().resolved_profile(), data_dir)
    if not verdict["passed"]:
        raise PromotionRefused(f"detector {candidate['version']} refused: {verdict['why']} "
                               f"(difference {verdict['difference']:+.3f}); promote with --force REASON to override")
    return verdict
