"""The commands that run or read Dagster: init, run, ablations, lineage, and promote's gate comparison.
They import Dagster when called; the plain commands (commands.py) never do."""

import json
import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from detector_pipeline.cli.paths import data_dir
from detector_pipeline.config.environment import read_environment
from detector_pipeline.errors import ArtifactError, BadInput, PromotionRefused

if TYPE_CHECKING:
    from detector_pipeline.tasks.promotion import GateDecision


def dagster_instance():
    """The instance in DAGSTER_HOME (what `make ui` shows), or a throwaway one when it is unset."""
    import dagster as dg

    home = read_environment().dagster_home
    if home is None:
        return dg.DagsterInstance.ephemeral()
    if not Path(home).is_dir():
        raise BadInput(f"DAGSTER_HOME {home} is not a folder: create it (mkdir -p {home}), or unset DAGSTER_HOME")
    return dg.DagsterInstance.get()


def failed_checks(result, blocking: bool) -> list[str]:
    """The checks of a finished run that failed, blocking ones (the promotion gate) or the others
    (warnings such as the ONNX export's parity or a batch's aging), each with its `why`."""
    lines = []
    for event in result.all_events:
        if event.event_type_value == "ASSET_CHECK_EVALUATION" and not event.asset_check_evaluation_data.passed:
            check = event.asset_check_evaluation_data
            if bool(check.blocking) == blocking:
                why = check.metadata.get("why")
                lines.append(f"check {check.check_name} failed: {why.value if why else ''}")
    return lines


def run_outcome(result) -> tuple[list[str], list[str]]:
    """(refusals, errors) of a finished run: a blocking gate check that failed is a refusal; a step or
    check that raised is an error. A non-blocking check that failed is neither (failed_checks)."""
    refusals, errors = failed_checks(result, blocking=True), []
    for event in result.all_events:
        if event.is_step_failure:
            error = event.step_failure_data.error
            if error is None or error.cls_name != "DagsterAssetCheckFailedError":  # the refusal, said above
                while error is not None and error.cause is not None:  # the user code's error, not Dagster's wrapper
                    error = error.cause
                errors.append(f"step {event.step_key} errored: {one_line(error.message if error else event.message)}")
    return refusals, errors


def one_line(message: str) -> str:
    lines = [line.strip() for line in (message or "").strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def print_failures(lines: list[str]) -> None:
    for line in lines:
        print(f"  {line}", file=sys.stderr)


def register_base(instance) -> None:
    from detector_pipeline.data.batches import BASE_BATCH

    if not instance.has_dynamic_partition("label_batches", BASE_BATCH):
        instance.add_dynamic_partitions("label_batches", [BASE_BATCH])


def init(args) -> int:
    """Register the base labels as the first label batch in the Dagster instance (DAGSTER_HOME)."""
    register_base(dagster_instance())
    print("label batch 'base' registered")
    return 0


def run(args) -> int:
    """Validate the base labels (partition `base` of teacher_labels) and retrain everything downstream,
    in-process, against the Dagster instance in DAGSTER_HOME: `make ui` then shows the run."""
    from detector_pipeline.data.batches import BASE_BATCH
    from detector_pipeline.definitions import build_defs

    defs = build_defs(read_environment().with_profile(args.profile))

    instance = dagster_instance()
    register_base(instance)
    started = time.time()
    result = defs.resolve_job_def("retrain_on_batch").execute_in_process(
        instance=instance, run_config=_console(args), partition_key=BASE_BATCH, raise_on_error=False)
    refusals, errors = run_outcome(result)
    if errors or (not result.success and not refusals):
        print(f"run {result.run_id} failed: {len(errors)} step(s) errored; nothing was promoted", file=sys.stderr)
        print_failures(refusals + errors)
        return 1
    trained = result.output_for_node("detector").version
    if refusals:
        print(f"the promotion gate refused detector {trained}; nothing was promoted:", file=sys.stderr)
        print_failures(refusals)
        # Still report on the candidate, so that the refusal can be judged.
        print("writing its evaluation report anyway", file=sys.stderr)
        report_run = defs.resolve_job_def("report").execute_in_process(instance=instance, raise_on_error=False,
                                                                      run_config=_console(args))
        if not report_run.success:
            print_failures(sum(run_outcome(report_run), []))
            return 1
    for warning in failed_checks(result, blocking=False):
        print(f"warning: {warning}", file=sys.stderr)
    shadow = result.output_for_node("shadow_comparison") if _ran(result, "shadow_comparison") else None
    return _print_run_summary(result.run_id, trained, time.time() - started, shadow)


def _ran(result, node: str) -> bool:
    return any(e.is_successful_output and e.step_key == node for e in result.all_events)


def _print_run_summary(run_id: str, trained: str, seconds: float, shadow=None) -> int:
    from detector_pipeline.evaluation.report import summary_lines
    from detector_pipeline.registry.pointer import read_promoted

    report = json.loads((data_dir() / "reports" / "latest" / "report.json").read_text())
    print(f"run {run_id} finished in {seconds:.0f} s")
    print("\n".join(summary_lines(report)))
    promoted = read_promoted(data_dir())
    current = promoted["version"] if promoted else "none"
    print(f"promoted detector: {current} ({'trained by this run' if current == trained else 'unchanged'})")
    if shadow is not None:
        print(shadow.line())
    print(f"report: {data_dir() / 'reports' / report['report_id'] / 'report.md'} (also {data_dir() / 'reports' / 'latest'})")
    return 0


def _console(args) -> dict:
    """The run's console log: the steps' own progress lines (INFO); Dagster's event stream with --debug."""
    return {"loggers": {"console": {"config": {"log_level": "DEBUG" if args.debug else "INFO"}}}}


def _job(name: str, args) -> int:
    """Run one of the project's jobs in-process against DAGSTER_HOME's instance."""
    from detector_pipeline.definitions import defs

    started = time.time()
    result = defs.resolve_job_def(name).execute_in_process(instance=dagster_instance(), raise_on_error=False,
                                                           run_config=_console(args))
    print(f"job {name}: run {result.run_id} {'succeeded' if result.success else 'failed'} in {time.time() - started:.0f} s")
    if not result.success:
        print_failures(sum(run_outcome(result), []))
    return 0 if result.success else 1


def ablations(args) -> int:
    """The article's claims and the training changes (twenty trainings), then the report again so that it includes them."""
    return _job("ablations", args) or _job("report", args)


def lineage(args) -> int:
    from detector_pipeline.registry.lineage import lineage, lineage_text

    from detector_pipeline.registry.live_figures import by_version, live_lines

    walk = lineage(dagster_instance(), args.version)
    walk["live"] = by_version(data_dir()).get(args.version, [])
    if args.json:
        print(json.dumps(walk, indent=2, default=str))
        return 0
    print(lineage_text(walk))
    print("\n".join(live_lines(walk["live"])) if walk["live"] else
          "  live: not yet measured on a label batch it did not train on")
    return 0


def record_promotion(record: dict) -> None:
    """A promotion made outside a run, as an event of promoted_detector in the Dagster instance: the UI
    and the assets that load the pointer see the same model."""
    import dagster as dg

    dagster_instance().report_runless_asset_event(dg.AssetMaterialization(
        asset_key="promoted_detector", description="promoted by `detector-pipeline promote`",
        metadata={"version": record["version"], "threshold": record["threshold"], "report": record["report_id"] or "none",
                  "previous_version": record["previous_version"] or "none",
                  **({"forced": record["forced"]} if record.get("forced") is not None else {})}))


def instance_labels_and_verdicts():
    """The instance's latest training_labels and every verdict file's validated rows (what the retrain's
    gate compared on), for `promote` outside a run."""
    import dagster as dg

    from detector_pipeline.definitions import defs
    from detector_pipeline.review.verdicts import latest_verdicts, read_validated

    missing = "run the chain first (detector-pipeline run), or promote with --force REASON"
    current = dagster_instance()
    if current.get_latest_materialization_event(dg.AssetKey("training_labels")) is None:
        raise ArtifactError(f"no training_labels to compare on in this Dagster instance (DAGSTER_HOME): {missing}")
    quiet = logging.getLogger("dagster")
    level, quiet.level = quiet.level, logging.WARNING  # its "Loading file from" line is no news to an operator
    try:
        labels = defs.load_asset_value("training_labels", instance=current)
        # What reviewed_labels' storage holds, as training_labels and the gate read it.
        verdicts, _ = read_validated(data_dir(), current.get_dynamic_partitions("verdict_files"))
    except OSError as exc:
        raise ArtifactError(f"the stored training_labels or verdicts can't be read ({exc}): {missing}") from None
    finally:
        quiet.level = level
    return labels, latest_verdicts(verdicts)


def check_against_promoted(data: Path, candidate, labels, verdicts) -> "GateDecision":
    """The gate outside a run: the comparison with the promoted model on the validation split of the
    instance's latest training_labels, and on the images people judged; PromotionRefused when the
    candidate is worse on either."""
    from detector_pipeline.defs.resources import PipelineSettings
    from detector_pipeline.tasks.promotion import compare_with_promoted
    from detector_pipeline.tasks.review import regression_on_verdicts

    settings = PipelineSettings.of(read_environment())
    verdict = compare_with_promoted(labels, candidate, settings.resolved_profile(), data)
    if not verdict.passed:
        raise PromotionRefused(f"detector {candidate.version} refused: {verdict.why} "
                               f"(difference {verdict.difference:+.3f}); promote with --force REASON to override")
    regression = regression_on_verdicts(labels, verdicts, candidate, settings.resolved_profile(), data,
                                        settings.target_precision)
    print(f"gate, human verdicts: {regression.why}")
    if not regression.passed:
        named = ", ".join(r["file"] for r in regression.newly_wrong[:5])
        raise PromotionRefused(f"detector {candidate.version} refused: {regression.why}"
                               f"{' (' + named + ')' if named else ''}; promote with --force REASON to override")
    return verdict
