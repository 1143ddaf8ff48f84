"""Walking from a model version back to the label batches and materializations that made it, and on
to the decisions taken about it (its gate checks, its evaluation reports, its promotions) with the
inputs each read, through the Dagster instance's records (provenance tags), not file timestamps."""

import dagster as dg

from detector_pipeline.errors import NotFound

DETECTOR = dg.AssetKey("detector")
TRAINING_LABELS = dg.AssetKey("training_labels")
TEACHER_LABELS = dg.AssetKey("teacher_labels")
EVALUATION_REPORT = dg.AssetKey("evaluation_report")
PROMOTED_DETECTOR = dg.AssetKey("promoted_detector")
GATE_CHECKS = ("detector_beats_probe_on_validation", "detector_not_worse_than_promoted")


def _materializations(instance: dg.DagsterInstance, key: dg.AssetKey, limit: int = 1000, partitions=None):
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=key, asset_partitions=partitions), limit=limit).records
    return records


def _describe(record) -> dict:
    m = record.asset_materialization
    return {"asset": m.asset_key.to_user_string(), "partition": m.partition, "run_id": record.run_id,
            "storage_id": record.storage_id, "timestamp": record.timestamp,
            "data_version": (m.tags or {}).get("dagster/data_version"),
            "code_version": (m.tags or {}).get("dagster/code_version")}


def _inputs(materialization) -> dict[str, int]:
    """The materialization (storage id) of each input a step read, from its provenance tags."""
    prefix = "dagster/input_event_pointer/"
    return {tag.removeprefix(prefix): int(value) for tag, value in (materialization.tags or {}).items()
            if tag.startswith(prefix)}


def _value(metadata, key: str):
    entry = metadata.get(key)
    return entry.value if entry is not None else None


def decisions(instance: dg.DagsterInstance, version: str, detector_storage_id: int) -> dict:
    """What was decided about this detector materialization, each with what it read: the blocking gate
    checks on it, the evaluation reports of it, and the promotions of the version (a run's, or an
    operator's `promote`, recorded without a run)."""
    gate = []
    for name in GATE_CHECKS:
        for record in instance.event_log_storage.get_asset_check_execution_history(
                dg.AssetCheckKey(DETECTOR, name), limit=100):
            evaluation = record.event.dagster_event.event_specific_data if record.event and record.event.dagster_event \
                else None
            target = getattr(getattr(evaluation, "target_materialization_data", None), "storage_id", None)
            if evaluation is not None and hasattr(evaluation, "passed") and target == detector_storage_id:
                gate.append({"check": name, "passed": evaluation.passed, "run_id": record.run_id,
                             "why": _value(evaluation.metadata, "why")})
    reports, report_ids = [], set()
    for record in _materializations(instance, EVALUATION_REPORT, limit=200):
        inputs = _inputs(record.asset_materialization)
        if inputs.get("detector") == detector_storage_id:
            report_id = _value(record.asset_materialization.metadata, "report_id")
            report_ids.add(report_id)
            reports.append({**_describe(record), "report_id": report_id, "inputs": inputs})
    promotions = []
    for record in _materializations(instance, PROMOTED_DETECTOR, limit=200):
        metadata = record.asset_materialization.metadata
        if _value(metadata, "version") == version:
            promotions.append({**_describe(record), "report_id": _value(metadata, "report"),
                               "threshold": _value(metadata, "threshold"), "by": "a run" if record.run_id else "promote",
                               "inputs": _inputs(record.asset_materialization)})
    return {"gate": gate, "reports": reports, "promotions": promotions}


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
        "decisions": decisions(instance, version, detector_record.storage_id),
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
    made = walk["decisions"]
    for g in made["gate"]:
        lines.append(f"gate {g['check']}: {'passed' if g['passed'] else 'failed'} in run {g['run_id']}: {g['why']}")
    for r in made["reports"]:
        read = ", ".join(f"{asset} {storage}" for asset, storage in sorted(r["inputs"].items()))
        lines.append(f"evaluation report {r['report_id']} by run {r['run_id']} <- {read}")
    for p in made["promotions"]:
        read = ", ".join(f"{asset} {storage}" for asset, storage in sorted(p["inputs"].items())) or "no run"
        lines.append(f"promoted by {p['by']} {p['run_id'] or ''} at threshold {p['threshold']} from report "
                     f"{p['report_id']} <- {read}")
    if not made["promotions"]:
        lines.append("never promoted")
    return "\n".join(lines)
