"""Nightly retrain (02:00 UTC by default, DETECTOR_RETRAIN_CRON to change it): only when something
upstream changed since the last model; otherwise the tick records that nothing changed."""

import dagster as dg

from detector_pipeline.defs.assets import TRAINING_ASSETS, detector, reviewed_labels, teacher_labels
from detector_pipeline.defs.jobs import retrain_job
from detector_pipeline.defs.partitions import label_batches
from detector_pipeline.registry.retrain_decision import retrain_decision


def current_batch_versions(instance: dg.DagsterInstance) -> dict[str, str]:
    versions = {}
    for batch in instance.get_dynamic_partitions(label_batches.name):
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=teacher_labels.key, asset_partitions=[batch]), limit=1).records
        if records:
            versions[batch] = records[0].asset_materialization.tags.get("dagster/data_version", "")
    return versions


def trained_state(instance: dg.DagsterInstance) -> tuple[dict[str, str] | None, dict[str, str]]:
    """What the latest detector was trained from (its metadata) and the code versions then (tags)."""
    event = instance.get_latest_materialization_event(detector.key)
    if event is None or event.asset_materialization is None:
        return None, {}
    metadata = event.asset_materialization.metadata
    batches = metadata["label_batches"].value if "label_batches" in metadata else {}
    code = {}
    for asset in TRAINING_ASSETS:
        latest = instance.get_latest_materialization_event(asset.key)
        if latest is not None and latest.asset_materialization is not None:
            code[asset.key.to_user_string()] = latest.asset_materialization.tags.get("dagster/code_version")
    return batches, code


def verdict_files_since_model(instance: dg.DagsterInstance) -> list[str]:
    """Verdict files (partitions of reviewed_labels) validated after the latest detector was trained."""
    event = instance.get_latest_materialization_event(detector.key)
    since = event.timestamp if event is not None else 0.0
    records = instance.fetch_materializations(dg.AssetRecordsFilter(asset_key=reviewed_labels.key,
                                                                    after_timestamp=since), limit=1000).records
    return sorted({r.partition_key for r in records if r.partition_key})


def current_code_versions() -> dict[str, str]:
    return {asset.key.to_user_string(): asset.code_versions_by_key[asset.key] for asset in TRAINING_ASSETS}


def nightly_retrain(cron_schedule: str) -> dg.ScheduleDefinition:
    """The schedule at the environment's cron (DETECTOR_RETRAIN_CRON, config/environment.py)."""

    @dg.schedule(name="nightly_retrain", job=retrain_job, cron_schedule=cron_schedule, execution_timezone="UTC",
                 default_status=dg.DefaultScheduleStatus.RUNNING)
    def _nightly_retrain(context: dg.ScheduleEvaluationContext):
        return retrain_tick(context)

    return _nightly_retrain


def retrain_tick(context: dg.ScheduleEvaluationContext) -> dg.SkipReason | dg.RunRequest:
    trained_batches, trained_code = trained_state(context.instance)
    decision = retrain_decision(current_batch_versions(context.instance), trained_batches,
                                current_code_versions(), trained_code, verdict_files_since_model(context.instance))
    if not decision.retrain:
        return dg.SkipReason(decision.why)
    return dg.RunRequest(tags={"retrain_reason": decision.why[:200]})
