"""Walking from a model version back to the label batches and materializations that made it, through
the Dagster instance's records (provenance tags), not file timestamps."""

import dagster as dg

from detector_pipeline.errors import NotFound

DETECTOR = dg.AssetKey("detector")
TRAINING_LABELS = dg.AssetKey("training_labels")
TEACHER_LABELS = dg.AssetKey("teacher_labels")


def _materializations(instance: dg.DagsterInstance, key: dg.AssetKey, limit: int = 1000, partitions=None):
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=partitions), limit=limit).records
    return records


def _describe(record) -> dict:
    m = record.asset_materialization
    return {"asset": m.asset_key.to_user_string(), "partition": m.partition, "run_id": record.run_id,
            "storage_id": record.storage_id, "timestamp": record.timestamp,
            "data_version": m.tags.get("dagster/data_version"), "code_version": m.tags.get("dagster/code_version")}


def lineage(instance: dg.DagsterInstance, version: str) -> dict:
    """detector VERSION -> its materialization -> the inputs it read (the `dagster/input_event_pointer/*`
    provenance tags) -> the training_labels materialization -> the teacher_labels batch materializations
    whose data versions it was built from."""
    detector_record = next((r for r in _materializations(instance, DETECTOR)
                            if r.asset_materialization.metadata.get("version")
                            and r.asset_materialization.metadata["version"].value == version), None)
    if detector_record is None:
        raise NotFound(f"no materialization of detector version {version!r} in this Dagster instance "
                       "(DAGSTER_HOME): see `detector-pipeline models` for the versions trained")
    tags = detector_record.asset_materialization.tags
    inputs = {}
    for tag, value in tags.items():
        if tag.startswith("dagster/input_event_pointer/"):
            asset = tag.removeprefix("dagster/input_event_pointer/")
            inputs[asset] = {"storage_id": int(value), "data_version": tags.get(f"dagster/input_data_version/{asset}")}
    labels_record = next((r for r in _materializations(instance, TRAINING_LABELS)
                          if r.storage_id == inputs.get("training_labels", {}).get("storage_id")), None)
    batches = []
    if labels_record is not None:
        labels_tags = labels_record.asset_materialization.tags
        recorded = detector_record.asset_materialization.metadata["label_batches"].value
        for batch, data_version in sorted(recorded.items()):
            match = next((r for r in _materializations(instance, TEACHER_LABELS, partitions=[batch])
                          if r.asset_materialization.tags.get("dagster/data_version") == data_version), None)
            batches.append({"batch": batch, "data_version": data_version,
                            "materialization": _describe(match) if match else None,
                            "labels_path": match.asset_materialization.metadata["labels_path"].value
                            if match else None})
        inputs["training_labels"]["provenance"] = {k: v for k, v in labels_tags.items() if k.startswith("dagster/")}
    metadata = detector_record.asset_materialization.metadata
    run = instance.get_run_by_id(detector_record.run_id)
    return {
        "version": version,
        "detector": _describe(detector_record),
        "run_tags": dict(run.tags) if run else {},
        "inputs": inputs,
        "training_labels": _describe(labels_record) if labels_record else None,
        "label_batches": batches,
        "model_card": metadata["model_card"].value if "model_card" in metadata else None,
    }


def lineage_text(walk: dict) -> str:
    d = walk["detector"]
    lines = [f"detector {walk['version']}",
             f"  materialized by run {d['run_id']} (code version {d['code_version']}, data version {d['data_version']})",
             f"  model card: {walk['model_card']} (in the data folder)"]
    for asset, info in sorted(walk["inputs"].items()):
        lines.append(f"  <- {asset}: materialization {info['storage_id']}, data version {info['data_version']}")
    t = walk["training_labels"]
    if t:
        lines.append(f"training_labels materialized by run {t['run_id']}, data version {t['data_version']}")
    for b in walk["label_batches"]:
        m = b["materialization"]
        where = f"run {m['run_id']}, materialization {m['storage_id']}" if m else "materialization not found"
        lines.append(f"  <- teacher_labels[{b['batch']}] data version {b['data_version']}: {where}; labels {b['labels_path']}")
    return "\n".join(lines)
