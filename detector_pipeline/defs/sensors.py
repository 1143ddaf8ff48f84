"""Retrain when new labeled images arrive. Each complete batch under data/incoming/ becomes one dynamic
partition of teacher_labels and one validation run; once no validation and no retrain is in flight,
one retrain takes every batch validated meanwhile. A burst of batches, or batches that arrive during a
retrain, so lead to one retrain, not one each."""

import hashlib
import json
from pathlib import Path

import dagster as dg

from detector_pipeline.data.batches import READY_MARKER, scan_incoming
from detector_pipeline.defs.jobs import (
    RETRAIN_TAGS,
    VALIDATE_TAGS,
    retrain_job,
    validate_batch_job,
    validate_verdicts_job,
)
from detector_pipeline.defs.partitions import label_batches, verdict_files
from detector_pipeline.review.verdicts import VERDICTS_DIR, VerdictsError, read_verdict_file
from detector_pipeline.review.verdicts import verdict_files as files_in
from detector_pipeline.defs.resources import PipelineSettings
from detector_pipeline.defs.schedules import current_batch_versions, trained_state
from detector_pipeline.registry.retrain_decision import retrain_decision

IN_FLIGHT = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
             dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]


def runs_in_flight(instance: dg.DagsterInstance, tags: dict[str, str]) -> int:
    return len(instance.get_run_ids(filters=dg.RunsFilter(tags=tags, statuses=IN_FLIGHT)))


def retrain_key(batch_versions: dict[str, str]) -> str:
    """One retrain per set of validated batches: the same set never starts a second one."""
    return "retrain:" + hashlib.sha256(json.dumps(batch_versions, sort_keys=True).encode()).hexdigest()[:16]


@dg.sensor(jobs=[validate_batch_job, retrain_job], minimum_interval_seconds=30,
           default_status=dg.DefaultSensorStatus.RUNNING)
def new_label_batches(context: dg.SensorEvaluationContext, settings: PipelineSettings):
    """A batch is picked up once, when its `_READY` marker exists; a malformed batch is skipped with its
    reason, once, and later batches go on."""
    cursor = json.loads(context.cursor) if context.cursor else {}
    scan = scan_incoming(Path(settings.incoming_dir))
    known = set(context.instance.get_dynamic_partitions(label_batches.name))
    reported = set(cursor.get("malformed", []))
    for batch, reason in scan.malformed.items():
        if batch not in reported:
            context.log.warning(f"skipped batch {batch!r}: {reason}")
    new = [batch for batch in scan.ready if batch not in known]
    validated = current_batch_versions(context.instance)
    # A partition never validated (the base batch of a new instance, a validation that failed): again.
    unvalidated = sorted(known - set(validated) - set(cursor.get("validation_requested", [])))
    to_validate = new + unvalidated
    requests = [dg.RunRequest(job_name=validate_batch_job.name, run_key=f"label-batch:{batch}", partition_key=batch,
                              tags=VALIDATE_TAGS) for batch in to_validate]
    retrain, why = _coalesced_retrain(context.instance, validated, bool(to_validate), cursor.get("retrain_key"))
    if retrain is not None:
        requests.append(retrain)
    notes = [f"{len(scan.pending)} batch(es) without {READY_MARKER} yet"] if scan.pending else []
    notes += [f"skipped {b!r}: {r}" for b, r in scan.malformed.items()]
    new_cursor = json.dumps({
        "malformed": sorted(set(scan.malformed) | reported),
        "validation_requested": sorted(set(cursor.get("validation_requested", [])) | set(to_validate)),
        "retrain_key": retrain.run_key if retrain is not None else cursor.get("retrain_key"),
    })
    if not requests:
        return dg.SensorResult(skip_reason=dg.SkipReason("; ".join([why, *notes])), cursor=new_cursor)
    return dg.SensorResult(run_requests=requests, cursor=new_cursor,
                           dynamic_partitions_requests=[label_batches.build_add_request(new)] if new else [])


def _coalesced_retrain(instance: dg.DagsterInstance, validated: dict[str, str], validating_now: bool,
                       last_key: str | None) -> tuple[dg.RunRequest | None, str]:
    """One retrain on every validated batch, once nothing is being validated or retrained."""
    if validating_now or runs_in_flight(instance, VALIDATE_TAGS):
        return None, "waiting for label batch validations to finish before one retrain on all of them"
    if runs_in_flight(instance, RETRAIN_TAGS):
        return None, "a retrain is running: batches validated meanwhile go into one retrain after it"
    trained_batches, _ = trained_state(instance)
    if trained_batches is None and not validated:
        return None, "no new complete batch"
    decision = retrain_decision(validated, trained_batches, {}, {})
    key = retrain_key(validated)
    if not decision.retrain or key == last_key:
        return None, "no new complete batch"
    request = dg.RunRequest(job_name=retrain_job.name, run_key=key, tags={"retrain_reason": decision.why[:200]})
    return request, decision.why


@dg.sensor(jobs=[validate_verdicts_job], minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING)
def new_verdict_files(context: dg.SensorEvaluationContext, settings: PipelineSettings):
    """A verdict file under data/verdicts/ (new, or changed: the review page adds to its reviewer's
    file) is validated once per content; the next retrain takes the verdicts. Files are expected to
    appear whole (written elsewhere and renamed in, as the review page does); no marker file. A file
    that can't be read as verdicts at all is skipped with its reason, and the others go on."""
    known = set(context.instance.get_dynamic_partitions(verdict_files.name))
    requests, new, skipped = [], [], []
    for path in files_in(settings.data / VERDICTS_DIR):
        content = path.read_bytes()
        try:
            read_verdict_file(path)
        except VerdictsError as exc:
            skipped.append(f"skipped {path.name!r}: {exc}")
            continue
        new += [path.name] if path.name not in known else []
        requests.append(dg.RunRequest(job_name=validate_verdicts_job.name, partition_key=path.name, tags=VALIDATE_TAGS,
                                      run_key=f"verdicts:{path.name}:{hashlib.sha256(content).hexdigest()[:16]}"))
    for line in skipped:
        context.log.warning(line)
    if not requests:
        return dg.SensorResult(skip_reason=dg.SkipReason(
            "; ".join(skipped) or f"no verdict file in {settings.data / VERDICTS_DIR}"))
    return dg.SensorResult(run_requests=requests,
                           dynamic_partitions_requests=[verdict_files.build_add_request(new)] if new else [])
