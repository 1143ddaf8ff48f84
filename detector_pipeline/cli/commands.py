"""The plain commands: no Dagster is imported, so they start fast and run where it is not installed."""

import json
import sys
from pathlib import Path

from detector_pipeline.cli.paths import data_dir
from detector_pipeline.config.environment import read_environment
from detector_pipeline.errors import ArtifactError, BadInput
from detector_pipeline.locations import PROJECT_ROOT


def demo_build(args) -> int:
    from detector_pipeline.demo_data.build import build

    build(Path(args.out), Path(args.scratch), args.seed)
    return 0


def demo_production(args) -> int:
    from detector_pipeline.demo_data.production_batches import write_production_demo

    demo = PROJECT_ROOT / "data/demo"
    made = write_production_demo(demo / "labels.parquet", demo, Path(args.out))
    print(f"base labels: {made.base_labels} (images under {made.images_root})")
    for name, folder in made.batches.items():
        print(f"label batch {name}: {folder}")
    print(f"train on the base: DETECTOR_LABELS={made.base_labels} detector-pipeline run; then copy each batch "
          "folder into data/incoming/ and create its _READY file")
    return 0


def weights_fetch(args) -> int:
    from detector_pipeline.models.offline_weights import fetch_offline_weights

    for path in fetch_offline_weights(Path(args.dir)):
        print(path)
    return 0


def models(args) -> int:
    from detector_pipeline.cli.production import live_columns
    from detector_pipeline.registry.pointer import list_models

    data = data_dir()
    live = live_columns(data)
    rows = [{**r, **live.get(r["version"], {"live_batches": 0, "live_roc_auc": None, "live_worse_batches": 0})}
            for r in list_models(data)]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no detector has been trained yet")
        return 0
    fmt = lambda v: "   -  " if v is None else f"{v:.3f}"  # noqa: E731
    # test: the in-distribution test; held-out: generator families kept out of training (report.json);
    # live: the latest label batch scored before training on it, and how many batches were worse than test
    print(f"{'version':18s} {'status':13s} {'val ROC':>7s} {'test ROC':>8s} {'test PR':>7s} {'held-out ROC':>12s} "
          f"{'live ROC':>8s} {'worse/batches':>13s}  {'created':16s}  backbone")
    for r in rows:
        worse = f"{r['live_worse_batches']}/{r['live_batches']}" if r["live_batches"] else "-"
        print(f"{r['version']:18s} {r['status']:13s} {fmt(r['val_roc_auc']):>7s} {fmt(r['test_roc_auc']):>8s} "
              f"{fmt(r['test_pr_auc']):>7s} {fmt(r.get('test_held_out_roc_auc')):>12s} {fmt(r['live_roc_auc']):>8s} "
              f"{worse:>13s}  {r['created']:16s}  {r['backbone'] or '-'}")
    return 0


def score(args) -> int:
    from detector_pipeline.registry.pointer import promoted_model
    from detector_pipeline.tasks.scoring import review_band, score_to_parquet

    promoted, folder = promoted_model(data_dir())
    threshold = args.threshold if args.threshold is not None else promoted.threshold
    if not 0.0 <= threshold <= 1.0:
        raise BadInput(f"--threshold {threshold} is outside [0, 1]")
    log = (lambda m: print(m, file=sys.stderr)) if not args.quiet else (lambda m: None)
    summary = score_to_parquet(folder, threshold, args.paths, Path(args.out), batch_size=args.batch_size, log=log,
                               engine=args.engine, review_band=review_band(promoted) if args.threshold is None else 0.0)
    print(json.dumps(summary, indent=2))
    return 0


def export(args) -> int:
    """One version as an ONNX graph with its preprocessing recipe (default: beside its weights, where
    `score --engine onnx` looks), checked against PyTorch; exit 3 when the check fails."""
    from detector_pipeline.export.onnx_export import TOLERANCE, export_dir_for, export_onnx
    from detector_pipeline.registry import pointer as registry
    from detector_pipeline.registry.reports import latest_report_of
    from detector_pipeline.tasks.production import parity_images

    if args.parity_images < 1:
        raise BadInput(f"--parity-images {args.parity_images}: give at least 1 (64 by default)")
    data = data_dir()
    record, _ = registry.detector_record(data, args.version)
    folder = registry.model_folder(data, record.folder)
    out = Path(args.out) if args.out else export_dir_for(folder)
    report = latest_report_of(data, args.version)
    images = (parity_images(data, report["report_id"] if report else None, args.parity_images)
              or _parity_images(args.parity_images))
    result = export_onnx(folder, out, images, _promoted_threshold(data, args.version))
    print(f"onnx: {result['onnx']}\npreprocessing: {result['preprocessing']}")
    tolerance = f"{TOLERANCE:.0e}".replace("e-0", "e-")  # 1e-4
    print(f"parity: max |Δp_ai| = {result['max_abs_delta_p']:.2g} on {result['n_parity_images']} images "
          f"(tolerance {tolerance})")
    if not result["passed"]:
        raise ArtifactError(f"the ONNX export of {args.version} failed its parity check (max |Δp_ai| = "
                            f"{result['max_abs_delta_p']:.2g} > {tolerance}): do not serve it; score with "
                            "--engine torch")
    return 0


def _parity_images(n: int) -> list[Path]:
    """For a version without a recorded test split: the first n images of the labels table, by path
    (the team's own kind of images, the same ones on every export)."""
    import pandas as pd

    labels, root = _labels_and_root()
    try:
        table = pd.read_parquet(labels, columns=["image_path"])
    except (OSError, ValueError) as exc:
        raise BadInput(f"parity images: cannot read image_path from {labels} ({' '.join(str(exc).split())}); set "
                       "DETECTOR_LABELS to a labels parquet") from None
    return [root / p for p in sorted(table["image_path"].dropna())[:n]]


def _labels_and_root() -> tuple[Path, Path]:
    """The labels table and the folder its image paths are relative to, as the pipeline's settings
    read them (DETECTOR_LABELS, DETECTOR_IMAGES_ROOT; default the demo set)."""
    environment = read_environment()
    return environment.labels_path, environment.images_root


def _promoted_threshold(data: Path, version: str) -> float | None:
    """The feed's threshold when this version is the promoted one: what a serving process should use."""
    from detector_pipeline.registry.pointer import read_promoted

    try:
        promoted = read_promoted(data)
    except ArtifactError:  # an unreadable pointer is `promote`'s to repair, not an export's
        return None
    return promoted["threshold"] if promoted and promoted["version"] == version else None


def promote(args) -> int:
    """Through the gate's comparison with the promoted model on the current validation split (the
    training_labels in the Dagster instance), or --force with a reason that the history keeps."""
    from detector_pipeline.cli.runs import check_against_promoted, instance_labels_and_verdicts, record_promotion
    from detector_pipeline.registry import pointer as registry
    from detector_pipeline.registry.artifacts import load_model_files
    from detector_pipeline.registry.records import PromotedModel
    from detector_pipeline.registry.reports import latest_report_of

    data = data_dir()
    candidate, _ = registry.detector_record(data, args.version)
    # The threshold comes from where the promoted_detector asset takes it: the version's evaluation report.
    report = latest_report_of(data, args.version)
    if report is None:
        raise ArtifactError(f"detector {args.version} has no evaluation report yet, so no operating threshold: "
                            "materialize evaluation_report for it first (job `report`)")
    load_model_files(registry.model_folder(data, candidate.folder))  # verified: a changed file is never promoted
    # --force compares with nothing, so it needs no Dagster instance; the shadow line is printed either way.
    labels, verdicts = (None, None) if args.force is not None else instance_labels_and_verdicts()
    print(_shadow_line(data, candidate, report["operating_point"]["threshold"], labels), flush=True)  # also when refused
    if args.force is None:
        verdict = check_against_promoted(data, candidate, labels, verdicts)
        print(f"gate: {verdict.why}")
    promoted = PromotedModel(version=args.version, folder=candidate.folder, threshold=report["operating_point"]["threshold"],
                             operating_point=report["operating_point"], report_id=report["report_id"],
                             promoted_by="detector-pipeline promote")
    record = registry.promote(data, promoted.record(), forced=args.force)
    record_promotion(record)
    print(f"promoted detector: {record['version']} (previous: {record['previous_version'] or 'none'}"
          f"{', forced: ' + args.force if args.force is not None else ''})")
    return 0


def _shadow_line(data: Path, candidate, threshold: float, labels) -> str:
    """What promoting would change on the champion's latest scored feed (the shadow comparison)."""
    from detector_pipeline.defs.resources import PipelineSettings
    from detector_pipeline.tasks.review import shadow_compare

    profile = PipelineSettings.of(read_environment()).resolved_profile()
    return shadow_compare(labels, candidate, threshold, profile, data).line()


def validate(args) -> int:
    from detector_pipeline.data.labels import load_labels

    result = load_labels(Path(args.labels), Path(args.root))
    if args.json:
        print(json.dumps({"accepted": len(result.accepted),
                          "quarantined": _records(result.quarantined)}, default=str))
    else:
        print(f"{len(result.accepted)} accepted, {len(result.quarantined)} quarantined of {result.n_input} rows")
        for row in result.quarantined.itertuples(index=False):
            print(f"  row {row.row}: {row.image_path!r}: {row.reason}")
    return 0


def _records(table) -> list[dict]:
    """Rows as JSON-ready dicts: a missing value is null (pandas' string columns hold NaN for it)."""
    return table.astype(object).where(table.notna(), None).to_dict(orient="records")


def bench(args) -> int:
    from detector_pipeline.bench import BenchPlan, run_bench, sample_images
    from detector_pipeline.config.profiles import get_profile

    profile = get_profile(args.profile, read_environment().weights_dir).with_overrides(num_workers=args.num_workers, amp=args.amp)
    labels, root = _labels_and_root()
    paths = tuple(sample_images(labels, root, args.images))
    log = (lambda _: None) if args.json else (lambda line: print(line, file=sys.stderr))
    photos = ()
    if args.decode:
        from detector_pipeline.bench.decode import CROP, photo_files, too_small

        photos = (tuple(sorted(Path(args.photos).glob("*.jp*g"))) if args.photos else
                  tuple(photo_files(PROJECT_ROOT / "data/cache/bench-photos")))
        if not photos:
            raise BadInput(f"no JPEG photographs (*.jpg, *.jpeg) in {args.photos}: give a folder that has some")
        if args.photos and (small := too_small(list(photos))):
            raise BadInput(f"{small[0]} is smaller than a {CROP} px crop on one side ({len(small)} such photograph(s) "
                           f"in {args.photos}): give photographs at least {CROP} px on each side")
    plan = BenchPlan(profile, paths, device=args.device, memory_images=args.memory_images,
                     probe_labels=labels if args.probe_fidelity else None, probe_images_root=root,
                     decode_photos=photos, cache_sizes=tuple(args.cache_sizes))
    results = run_bench(plan, log=log)
    from detector_pipeline.registry.artifacts import write_json_atomic

    write_json_atomic(Path(args.out), results)
    print(json.dumps(results, indent=2) if args.json else f"wrote {args.out}")
    return 0


