from detector_pipeline.registry import live_figures


def _result(batch, version, roc, worse=False):
    return {"batch": batch, "batch_version": "v", "model_version": version, "threshold": 0.7, "n": 10,
            "evaluated_at": "2026-11-29T00:00:00Z",
            "aging": {"batch_roc_auc": roc, "batch_roc_auc_ci95": [roc - 0.1, roc + 0.1], "test_roc_auc": 0.8,
                      "test_roc_auc_ci95": [0.75, 0.85], "difference": roc - 0.8, "worse_beyond_noise": worse, "judged": True,
                      "worse_slices": [{"slice": "family=new"}] if worse else []},
            "figures": {"teacher": {"pr_auc": {"value": 0.4}}, "decisions": {"ai_share": 0.1}}}


def test_series_keeps_order_and_the_latest_figures_of_a_batch_evaluated_again(tmp_path):
    live_figures.append(tmp_path, _result("b1", "m1", 0.7))
    live_figures.append(tmp_path, _result("b2", "m1", 0.6, worse=True))
    live_figures.append(tmp_path, _result("b1", "m1", 0.75))
    with open(tmp_path / live_figures.LEDGER, "a") as ledger:
        ledger.write('{"batch": "cut sh')  # a write cut short
    series = live_figures.series(tmp_path)
    assert [(e["batch"], e["batch_roc_auc"]) for e in series] == [("b1", 0.75), ("b2", 0.6)]
    assert live_figures.by_version(tmp_path) == {"m1": series}
    lines = live_figures.live_lines(series)
    assert "within noise" in lines[0] and "WORSE beyond noise; worse: family=new" in lines[1]


def test_no_ledger_is_an_empty_series(tmp_path):
    assert live_figures.series(tmp_path) == []
