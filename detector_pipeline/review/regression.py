"""The regression gate: on the images people have judged `ai` or `real`, a candidate may not rank
worse than the promoted model beyond noise (the project's one rule, evaluation/noise.py, paired: the
same images). It also names the images the candidate newly gets wrong at its threshold."""

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from detector_pipeline.evaluation.metrics import roc_auc
from detector_pipeline.evaluation.noise import paired_auc_difference
from detector_pipeline.review.verdicts import SCORE_OF

JUDGED = tuple(SCORE_OF)  # `unsure` says nothing about either model


@dataclass(frozen=True)
class RegressionDecision:
    passed: bool
    why: str
    judged_images: int = 0
    compared_with: str | None = None
    candidate_roc_auc: float | None = None
    incumbent_roc_auc: float | None = None
    difference: float | None = None
    difference_95ci: list[float] | None = None
    candidate_wrong: int | None = None
    incumbent_wrong: int | None = None
    newly_wrong: list[dict] = field(default_factory=list)  # sha256, file, verdict, p_candidate, p_incumbent


def judged(verdicts: pd.DataFrame) -> pd.DataFrame:
    """The verdicts a model can be right or wrong about, with y = 1 for `ai`."""
    rows = verdicts[verdicts["verdict"].isin(JUDGED)].reset_index(drop=True)
    return rows.assign(y=(rows["verdict"] == "ai").astype(int))


def no_verdicts() -> RegressionDecision:
    return RegressionDecision(passed=True, why="no human verdicts (ai or real) yet: nothing to regress on")


def compare_on_verdicts(rows: pd.DataFrame, candidate: np.ndarray, candidate_threshold: float,
                        incumbent: np.ndarray | None, incumbent_threshold: float | None,
                        incumbent_version: str | None, groups: np.ndarray) -> RegressionDecision:
    """rows: judged(verdicts); the scores in their order. Without an incumbent the candidate passes and
    its errors are listed."""
    y = rows["y"].to_numpy()
    wrong_candidate = (candidate >= candidate_threshold).astype(int) != y
    base = {"judged_images": int(len(rows)), "candidate_roc_auc": roc_auc(y, candidate),
            "candidate_wrong": int(wrong_candidate.sum())}
    if incumbent is None:
        return RegressionDecision(passed=True, why="no usable promoted model to compare with", **base)
    wrong_incumbent = (incumbent >= incumbent_threshold).astype(int) != y
    newly = np.flatnonzero(wrong_candidate & ~wrong_incumbent)
    paired = paired_auc_difference(y, candidate, incumbent, groups)
    worse = paired["verdict"] == "refuted"
    if paired["difference"] is None:
        why = (f"the {len(rows)} judged images hold one class only, so the ranking can't be compared; "
               f"{len(newly)} newly wrong at the threshold")
    elif worse:
        why = (f"worse than promoted detector {incumbent_version} on the {len(rows)} images people judged, beyond "
               f"noise; {len(newly)} newly wrong")
    else:
        why = (f"not worse than promoted detector {incumbent_version} on the {len(rows)} images people judged "
               f"beyond noise; {len(newly)} newly wrong")
    newly_wrong = [{"sha256": rows["sha256"].iloc[i], "file": rows["file"].iloc[i], "verdict": rows["verdict"].iloc[i],
                    "p_candidate": float(candidate[i]), "p_incumbent": float(incumbent[i])} for i in newly]
    return RegressionDecision(passed=not worse, why=why, compared_with=incumbent_version,
                              incumbent_roc_auc=roc_auc(y, incumbent), difference=paired["difference"],
                              difference_95ci=paired["ci95"], incumbent_wrong=int(wrong_incumbent.sum()),
                              newly_wrong=newly_wrong, **base)
