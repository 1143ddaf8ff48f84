"""How figures read in the Dagster UI: rounded to what they mean, an interval as text beside its
figure, a missing figure with its reason in the same row, and tables or plots instead of JSON."""

from collections.abc import Mapping, Sequence

import dagster as dg
import pandas as pd

from detector_pipeline.evaluation import plots

DIGITS = 3  # a ROC-AUC from a few hundred test images is not known better than this


def number(value: float | None, why_missing: str, digits: int = DIGITS) -> dg.MetadataValue:
    """A float the UI can plot across materializations, rounded; else "n/a: why"."""
    if value is None:
        return dg.MetadataValue.text(f"n/a: {why_missing}")
    return dg.MetadataValue.float(round(float(value), digits))


def interval(ci95: Sequence[float] | None, why_missing: str, digits: int = DIGITS) -> dg.MetadataValue:
    if not ci95:
        return dg.MetadataValue.text(f"n/a: {why_missing}")
    low, high = ci95
    return dg.MetadataValue.text(f"[{low:+.{digits}f}, {high:+.{digits}f}]" if low < 0 else
                                 f"[{low:.{digits}f}, {high:.{digits}f}]")


def figure(name: str, value: float | None, ci95: Sequence[float] | None, why_missing: str) -> dict:
    """`name` and `name_95ci`, side by side."""
    return {name: number(value, why_missing),
            f"{name}_95ci": interval(ci95, why_missing if value is None else "no interval (too few source groups)")}


def table(rows: Sequence[Mapping] | pd.DataFrame, digits: int = DIGITS, limit: int | None = None) -> dg.MetadataValue:
    """Rows (the first `limit` of them) as a markdown table: floats rounded, intervals as text, nothing
    as an empty cell."""
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows))
    frame = frame.head(limit) if limit is not None else frame
    if frame.empty:
        return dg.MetadataValue.md("_none_")
    shown = frame.apply(lambda column: column.map(lambda v: _cell(v, digits)))
    return dg.MetadataValue.md(shown.to_markdown(index=False))


def mapping(values: Mapping, key: str = "name", value: str = "value", digits: int = DIGITS) -> dg.MetadataValue:
    return table([{key: k, value: v} for k, v in values.items()], digits)


def history_plot(history: Sequence[Mapping]) -> dg.MetadataValue:
    """Training loss and validation ROC-AUC per epoch, as a plot."""
    if not history:
        return dg.MetadataValue.text("n/a: no epoch finished")
    return dg.MetadataValue.md(plots.markdown_image(plots.training_history(list(history)), "training history"))


def _cell(value, digits: int) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    if isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value):
        return f"[{value[0]:.{digits}f}, {value[1]:.{digits}f}]"
    if isinstance(value, Mapping):
        return ", ".join(f"{k}: {_cell(v, digits)}" for k, v in value.items())
    return str(value)
