"""The challenger beside the champion on the same recent feed, before it replaces it: how many
decisions change and which way, how much the two agree, and whether the change is far larger than
their validation difference predicts (or larger than any retrain should make)."""

from dataclasses import asdict, dataclass, field

import numpy as np
from scipy.stats import binomtest, spearmanr
from sklearn.metrics import cohen_kappa_score

# Beyond this multiple of the upper end of the validation flip share's 95 % interval, the feed's flips
# are "far larger than validation predicts": a generous factor, as the feed is not the validation split.
SURPRISE_FACTOR = 2.0
# A share of changed feed decisions that warns whatever validation predicts: a teacher gone wrong
# everywhere moves validation's labels with it, so validation "predicts" its flips too.
MAX_CHANGED_SHARE = 0.25


@dataclass(frozen=True)
class ShadowComparison:
    challenger: str
    champion: str | None
    feed_images: int = 0
    changed: int = 0
    real_to_ai: int = 0
    ai_to_real: int = 0
    agreement: float | None = None  # share of feed images with the same decision
    cohen_kappa: float | None = None
    spearman: float | None = None  # of the two P(AI)s
    validation_flip_share: float | None = None
    validation_flip_share_ci95: list[float] | None = None
    validation_images: int = 0
    surprising: bool = False
    why: str = ""
    biggest_flips: list[dict] = field(default_factory=list)  # path, sha256, p_champion, p_challenger, direction

    @property
    def compared(self) -> bool:
        return self.champion is not None and self.feed_images > 0

    def line(self) -> str:
        """What `promote` and the run summary print."""
        if not self.compared:
            return f"shadow scoring: {self.why}"
        return (f"would change {self.changed:,} of {self.feed_images:,} feed decisions: {self.real_to_ai:,} real→AI, "
                f"{self.ai_to_real:,} AI→real (champion {self.champion}, challenger {self.challenger})")

    def record(self) -> dict:
        return asdict(self)


def not_compared(challenger: str, champion: str | None, why: str) -> ShadowComparison:
    return ShadowComparison(challenger=challenger, champion=champion, why=why)


def flip_share(champion_ai: np.ndarray, challenger_ai: np.ndarray) -> tuple[float | None, list[float] | None]:
    n = len(champion_ai)
    if n == 0:
        return None, None
    k = int(np.sum(champion_ai != challenger_ai))
    ci = binomtest(k, n).proportion_ci(0.95, method="wilson")
    return k / n, [float(ci.low), float(ci.high)]


def compare(challenger: str, champion: str, paths: list[str], sha256: list[str], p_champion: np.ndarray,
            champion_threshold: float, p_challenger: np.ndarray, challenger_threshold: float,
            val_champion_ai: np.ndarray, val_challenger_ai: np.ndarray, shown: int = 30) -> ShadowComparison:
    """Decisions `ai` (P(AI) at or above the model's own threshold) or not, per model, on the feed;
    the validation split's flip share is what their validation difference predicts."""
    old, new = np.asarray(p_champion) >= champion_threshold, np.asarray(p_challenger) >= challenger_threshold
    changed = old != new
    val_share, val_ci = flip_share(np.asarray(val_champion_ai), np.asarray(val_challenger_ai))
    share = float(changed.mean()) if len(changed) else 0.0
    beyond_validation = val_ci is not None and share > SURPRISE_FACTOR * val_ci[1] and changed.sum() > 0
    too_many = share > MAX_CHANGED_SHARE
    expected = "no validation split to predict from" if val_ci is None else (
        f"{share:.1%} of the feed changes decision against {val_share:.1%} of validation "
        f"(95 % interval {val_ci[0]:.1%} to {val_ci[1]:.1%})")
    why = (f"far more decisions change on the feed than on validation: {expected}" if beyond_validation else
           f"{share:.1%} of the feed's decisions change, more than {MAX_CHANGED_SHARE:.0%} whatever validation "
           f"predicts: {expected}" if too_many else expected)
    surprising = beyond_validation or too_many
    order = np.argsort(-np.abs(np.asarray(p_challenger) - np.asarray(p_champion))[changed], kind="stable")[:shown]
    flipped = np.flatnonzero(changed)[order]
    flips = [{"path": paths[i], "sha256": sha256[i], "p_champion": float(p_champion[i]),
              "p_challenger": float(p_challenger[i]), "direction": "real→AI" if new[i] else "AI→real"} for i in flipped]
    agree = None if len(old) == 0 else float(np.mean(~changed))
    kappa = float(cohen_kappa_score(old, new)) if len(set(old) | set(new)) > 1 else None
    rho = float(spearmanr(p_champion, p_challenger).statistic) if len(old) > 2 else None
    return ShadowComparison(challenger=challenger, champion=champion, feed_images=int(len(old)),
                            changed=int(changed.sum()), real_to_ai=int((~old & new).sum()),
                            ai_to_real=int((old & ~new).sum()), agreement=agree,
                            cohen_kappa=None if kappa is None or np.isnan(kappa) else kappa,
                            spearman=None if rho is None or np.isnan(rho) else rho, validation_flip_share=val_share,
                            validation_flip_share_ci95=val_ci, validation_images=int(len(val_champion_ai)),
                            surprising=bool(surprising), why=why, biggest_flips=flips)
