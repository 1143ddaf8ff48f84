"""defs/metadata.py: what the UI shows for a figure, an interval, a missing value, a table, a history."""

import dagster as dg
import pandas as pd

from detector_pipeline.defs import metadata as md


def test_a_figure_is_rounded_and_its_interval_is_text_beside_it():
    shown = md.figure("roc_auc", 0.6996581764663992, [0.6512345, 0.7498765], "one class only")
    assert shown["roc_auc"] == dg.MetadataValue.float(0.7)
    assert shown["roc_auc_95ci"] == dg.MetadataValue.text("[0.651, 0.750]")
    assert md.interval([-0.0312, 0.0101], "x") == dg.MetadataValue.text("[-0.031, +0.010]")


def test_a_missing_figure_says_why_in_the_same_row():
    shown = md.figure("roc_auc", None, None, "the batch holds one class only")
    assert shown["roc_auc"] == dg.MetadataValue.text("n/a: the batch holds one class only")
    assert shown["roc_auc_95ci"].value.startswith("n/a: ")
    assert md.figure("x", 0.8, None, "")["x_95ci"] == dg.MetadataValue.text("n/a: no interval (too few source groups)")


def test_tables_round_floats_and_never_show_json_nulls():
    shown = md.table([{"family": "sdxl", "roc_auc": 0.81234567, "ci": [0.7, 0.9], "held_out": True, "n": 3},
                      {"family": "flux", "roc_auc": None, "ci": None, "held_out": False, "n": 4}]).value
    assert "0.812" in shown and "0.81234567" not in shown and "[0.700, 0.900]" in shown
    assert "null" not in shown and "None" not in shown and "nan" not in shown
    assert md.table(pd.DataFrame()).value == "_none_"


def test_a_training_history_is_a_plot():
    history = [{"epoch": 0, "train_loss": 1.2, "val_roc_auc": 0.7}, {"epoch": 1, "train_loss": 1.0, "val_roc_auc": None}]
    shown = md.history_plot(history)
    assert shown.value.startswith("![training history](data:image/png;base64,")
    assert md.history_plot([]) == dg.MetadataValue.text("n/a: no epoch finished")


def test_a_table_shows_its_first_rows_only_when_asked():
    rows = [{"reason": f"missing file {i}"} for i in range(5)]
    assert md.table(rows, limit=2).value.count("missing file") == 2
    assert md.table(rows).value.count("missing file") == 5
