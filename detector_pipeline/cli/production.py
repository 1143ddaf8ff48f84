"""`review BATCH`: a batch's review queue; and the live figures that `models` and `lineage` show.
No Dagster and no torch: these read the files batch_evaluation and review_queue wrote."""

import shutil
from pathlib import Path

import pandas as pd

from detector_pipeline.cli.paths import data_dir
from detector_pipeline.config.environment import read_environment
from detector_pipeline.errors import NotFound
from detector_pipeline.registry import live_figures

SHOWN = 15


def review_queue_file(data: Path, batch: str) -> tuple[Path, dict]:
    """The review queue of the batch's latest evaluation, and that evaluation's ledger entry. Only
    names the ledger holds become paths."""
    evaluations = [e for e in live_figures.series(data) if e["batch"] == batch]
    if not evaluations:
        raise NotFound(f"batch {batch!r} has no evaluation in {data / live_figures.LEDGER}: a batch is evaluated "
                       "(and its review queue made) when it is validated while a model is promoted (job validate_batch)")
    latest = max(evaluations, key=lambda e: e["evaluated_at"])
    path = data / "production" / batch / latest["model_version"] / "review_queue.parquet"
    if not path.is_file():
        raise NotFound(f"{path} does not exist: materialize review_queue for partition {batch!r}")
    return path, latest


def review(args) -> int:
    from detector_pipeline.review.verdicts import reviewer_file_name

    data = data_dir()
    if args.serve:
        args.reviewer = args.reviewer or read_environment().user
        reviewer_file_name(args.reviewer)  # a bad name is refused before anything is read
    path, evaluation = review_queue_file(data, args.batch)
    queue = pd.read_parquet(path)
    if args.serve:
        return serve_review(data, args, queue, evaluation)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, args.out)
    print(f"batch {args.batch}: {len(queue)} images where detector {evaluation['model_version']} and the teacher "
          f"disagree most (threshold {evaluation['threshold']:.3f}); contact sheet {path.with_name('contact_sheet.png')}")
    columns = [c for c in ("rank", "kind", "ai_score", "p_ai", "family", "file") if c in queue.columns]
    print(queue[columns].head(SHOWN).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    if len(queue) > SHOWN:
        print(f"... {len(queue) - SHOWN} more in {args.out or path}")
    elif args.out:
        print(f"written to {args.out}")
    return 0


def live_columns(data: Path) -> dict[str, dict]:
    """Per model version: how many batches it was measured on live, the latest batch's ROC-AUC, and
    how many were worse than its test split beyond noise."""
    out = {}
    for version, entries in live_figures.by_version(data).items():
        out[version] = {"live_batches": len(entries), "live_roc_auc": entries[-1]["batch_roc_auc"],
                        "live_worse_batches": sum(e["worse_beyond_noise"] for e in entries)}
    return out


def serve_review(data: Path, args, queue: pd.DataFrame, evaluation: dict) -> int:
    """The review page of the batch's queue until interrupted (Ctrl-C)."""
    from detector_pipeline.review.page import review_app, serve

    if "sha256" not in queue.columns:
        raise NotFound(f"{args.batch}'s review queue predates content hashes: materialize review_queue for "
                       f"partition {args.batch!r} again")
    print(f"review page of batch {args.batch} ({len(queue)} images) for {args.reviewer}: "
          f"http://{args.host}:{args.port}/ (Ctrl-C stops it)", flush=True)
    serve(review_app(data, args.batch, queue, evaluation, args.reviewer), args.host, args.port)
    return 0
