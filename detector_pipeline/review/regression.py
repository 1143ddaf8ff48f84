"""The regression gate: on the images people have judged `ai` or `real`, a candidate may not decide
worse than the promoted model beyond noise, and it names the images it newly gets wrong.

The statistic is the share of judged images each model decides as people did, each at its own
operating threshold (P(AI) >= threshold is `ai`), compared by the project's one paired rule
(evaluation/noise.py: source groups resampled). A verdict is a decision about one image, so the
gate compares decisions, not rankings: ROC-AUC on a few dozen judged images, most of them real,
hardly moves when a model calls every real photograph AI, and is undefined when people judged one
class only (a set of false positives is the commonest regression set there is). Both ROC-AUCs are
still reported. The queue picks the images the promoted model got wrong, so a small set of verdicts
favours any challenger; the gate gains its power as verdicts accumulate.
"""

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from sklearn.metrics import accuracy_score

from detector_pipeline.evaluation.metrics import roc_auc
from detector_pipeline.evaluation.noise import paired_difference
from detector_pipeline.review.verdicts import SCORE_OF

JUDGED = tuple(SCORE_OF)  # `unsure` says nothing about either model


@dataclass(frozen=True)
class RegressionDecision:
    passed: bool
    why: str
    judged_images: int = 0
    compared_with: str | None = None
    candidate_right: float | None = None  # share of judged images decided as people did
    incumbent_right: float | None = None
    difference: float | None = None  # candidate_right - incumbent_right, paired
    candidate_roc_auc: float | None = None
    incumbent_roc_auc: float | None = None
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


def decided_as_people(y: np.ndarray, decisions: np.ndarray) -> float:
    return float(accuracy_score(y, decisions))


def compare_on_verdicts(rows: pd.DataFrame, candidate: np.ndarray, candidate_threshold: float,
                        incumbent: np.ndarray | None, incumbent_threshold: float | None,
                        incumbent_version: str | None, groups: np.ndarray) -> RegressionDecision:
    """rows: judged(verdicts); the scores in their order. Without an incumbent the candidate passes and
    its errors are listed."""
    y = rows["y"].to_numpy()
    said_ai = (np.asarray(candidate) >= candidate_threshold).astype(int)
    wrong_candidate = said_ai != y
    base = {"judged_images": int(len(rows)), "candidate_roc_auc": roc_auc(y, candidate),
            "candidate_right": decided_as_people(y, said_ai), "candidate_wrong": int(wrong_candidate.sum())}
    if incumbent is None:
        return RegressionDecision(passed=True, why="no usable promoted model to compare with", **base)
    incumbent_said_ai = (np.asarray(incumbent) >= incumbent_threshold).astype(int)
    wrong_incumbent = incumbent_said_ai != y
    newly = np.flatnonzero(wrong_candidate & ~wrong_incumbent)
    paired = paired_difference(y, said_ai, incumbent_said_ai, groups, metric=decided_as_people)
    worse = paired["verdict"] == "refuted"
    right = (base["candidate_right"], decided_as_people(y, incumbent_said_ai))
    why = (f"{'worse' if worse else 'not worse'} than promoted detector {incumbent_version} beyond noise on the "
           f"{len(rows)} images people judged: decides {right[0]:.0%} of them as people did against {right[1]:.0%} "
           f"(wrong on {int(wrong_candidate.sum())} against {int(wrong_incumbent.sum())}; {len(newly)} newly wrong)")
    newly_wrong = [{"sha256": rows["sha256"].iloc[i], "file": rows["file"].iloc[i], "verdict": rows["verdict"].iloc[i],
                    "p_candidate": float(candidate[i]), "p_incumbent": float(incumbent[i])} for i in newly]
    return RegressionDecision(passed=not worse, why=why, compared_with=incumbent_version,
                              incumbent_right=right[1],
                              incumbent_roc_auc=roc_auc(y, incumbent), difference=paired["difference"],
                              difference_95ci=paired["ci95"], incumbent_wrong=int(wrong_incumbent.sum()),
                              newly_wrong=newly_wrong, **base)
