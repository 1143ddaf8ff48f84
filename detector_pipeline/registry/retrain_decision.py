"""Whether a retrain is due: what the last model was trained from, against what there is now."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Decision:
    retrain: bool
    why: str


def retrain_decision(current_batches: dict[str, str], trained_batches: dict[str, str] | None,
                     current_code: dict[str, str], trained_code: dict[str, str],
                     verdict_files_since: list[str] | None = None) -> Decision:
    """batches: label batch -> data version; code: asset -> code version; verdict_files_since: the
    verdict files validated after the last model was trained (people's verdicts it has not seen)."""
    if trained_batches is None:
        return Decision(True, "no model has been trained yet")
    added = sorted(set(current_batches) - set(trained_batches))
    changed = sorted(b for b in set(current_batches) & set(trained_batches) if current_batches[b] != trained_batches[b])
    removed = sorted(set(trained_batches) - set(current_batches))
    code = sorted(a for a, v in current_code.items() if trained_code.get(a) not in (None, v))
    reasons = [f"new label batches {added}" if added else "", f"label batches changed {changed}" if changed else "",
               f"label batches removed {removed}" if removed else "", f"code changed in {code}" if code else "",
               f"verdicts validated since the last model {sorted(verdict_files_since)}" if verdict_files_since else ""]
    reasons = [r for r in reasons if r]
    if reasons:
        return Decision(True, "; ".join(reasons))
    return Decision(False, "nothing changed upstream since the last model")
