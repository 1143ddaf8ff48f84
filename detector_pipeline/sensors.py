"""Retrain when new labeled images arrive: each complete batch under data/incoming/ becomes one
dynamic partition of teacher_labels and one run."""

import json
from pathlib import Path

import dagster as dg

from detector_pipeline.assets import label_batches
from detector_pipeline.batches import READY_MARKER, scan_incoming
from detector_pipeline.jobs import retrain_on_batch_job
from detector_pipeline.resources import PipelineSettings


@dg.sensor(job=retrain_on_batch_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def new_label_batches(context: dg.SensorEvaluationContext, settings: PipelineSettings):
    """A batch is picked up once, when its `_READY` marker exists; a malformed batch is skipped with its
    reason, once, and later batches go on."""
    scan = scan_incoming(Path(settings.incoming_dir))
    known = set(context.instance.get_dynamic_partitions(label_batches.name))
    reported = set(json.loads(context.cursor)["malformed"]) if context.cursor else set()
    for batch, reason in scan.malformed.items():
        if batch not in reported:
            context.log.warning(f"skipped batch {batch!r}: {reason}")
    cursor = json.dumps({"malformed": sorted(set(scan.malformed) | reported)})
    new = [batch for batch in scan.ready if batch not in known]
    if not new:
        notes = [f"{len(scan.pending)} batch(es) without {READY_MARKER} yet"] if scan.pending else []
        notes += [f"skipped {b!r}: {r}" for b, r in scan.malformed.items()]
        return dg.SensorResult(skip_reason=dg.SkipReason("; ".join(["no new complete batch", *notes])), cursor=cursor)
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=f"label-batch:{batch}", partition_key=batch) for batch in new],
        dynamic_partitions_requests=[label_batches.build_add_request(new)],
        cursor=cursor,
    )
