"""The evaluation report: report.json for tools, report.md (with its figures) for people."""

import os
from pathlib import Path


from detector_pipeline.evaluation.test_sets import HELD_OUT, IN_DISTRIBUTION, WHOLE_SPLIT
from detector_pipeline.registry.artifacts import atomic_path, write_bytes_atomic, write_json_atomic


def build_report(*, detector_version: str, probe_version: str, label_stats: dict, counts: dict, probe: dict, detector: dict,
                 operating_point: dict, created_by: dict, metrics: dict | None = None, calibration: dict | None = None,
                 slices: dict | None = None, robustness: dict | None = None, shortcut_baselines: dict | None = None,
                 ablations: dict | None = None) -> dict:
    """probe / detector: {"backbone": str, "weights": str, "randomly_initialised": bool, "version": str,
    "train"/"val"/"test_in_distribution": ranking metrics}."""
    gap = None
    if detector["train"]["roc_auc"] is not None and detector[IN_DISTRIBUTION]["roc_auc"] is not None:
        gap = detector["train"]["roc_auc"] - detector[IN_DISTRIBUTION]["roc_auc"]
    result = {
        # what the report judged: the detector and the probe it was compared with; report_id names both
        "report_id": f"{detector_version}-{probe_version}",
        "detector_version": detector_version,
        "probe_version": probe_version,
        "n_test": counts[WHOLE_SPLIT],
        "counts": counts,
        "label_stats": label_stats,
        "probe": probe,
        "detector": {**detector, "train_test_roc_gap": gap},
        "operating_point": operating_point,
        "positive_definition": "teacher ai_score >= 0.5",
        "created_by": created_by,
        "metrics": metrics,
        "calibration": calibration,
        "slices": slices,
        "robustness": robustness,
        "shortcut_baselines": shortcut_baselines,
        "ablations": ablations,
    }
    result["model_card"] = model_card_section(result)
    return result


def model_card_section(report: dict) -> dict:
    """Intended use, data and teacher, the headline numbers, where it fails, thresholds."""
    failing = []
    for row in (report.get("slices") or {}).get("family_vs_real", {}).get("detector", []):
        if row["roc_auc"] is not None and row["roc_auc"] < 0.7:
            failing.append(f"generator family {row['family']}{' (held out of training)' if row['held_out_of_training'] else ''}: "
                           f"ROC-AUC {row['roc_auc']:.2f}")
    for row in (report.get("slices") or {}).get("size_band", []):
        if row["fpr_at_threshold"] is not None and row["n"] >= 10 and row["fpr_at_threshold"] > 0.1:
            failing.append(f"images {row['size_band']}: false-positive rate {row['fpr_at_threshold']:.2f}")
    op = report["operating_point"]
    return {
        "intended_use": "ranking uploads of an image feed by how likely they are AI-generated, to filter "
                        "automatically above the threshold and send the review band to people; not a forensic proof",
        "data_and_teacher": f"{report['label_stats']['n']} images labelled by the teacher's ai_score; positive means "
                            f"{report['positive_definition']}; the model learns the teacher, mistakes included",
        "detector": report["detector"]["backbone"], "probe": report["probe"]["backbone"],
        "test_roc_auc": report["detector"][IN_DISTRIBUTION]["roc_auc"],
        "test_pr_auc": report["detector"][IN_DISTRIBUTION]["pr_auc"],
        "test_means": report["detector"][IN_DISTRIBUTION].get("what", "test split"),
        "held_out_generators_roc_auc": (report["detector"].get("test_held_out") or {}).get("roc_auc"),
        "real_from_held_out_sources": ((report.get("slices") or {}).get("real_only_false_positive_rate") or {})
        .get("held_out_sources"),
        "threshold": op["threshold"], "review_band": op.get("review_band"), "threshold_rule": op["rule"],
        "known_failure_slices": failing,
    }


SPLIT_WORDS = {"train": "train", "val": "validation", IN_DISTRIBUTION: "test (seen generators)",
               "test_held_out": "test (held-out generators)"}


def _fmt(value) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _fmt_ci(value, ci) -> str:
    return _fmt(value) + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if value is not None and ci else "")


def report_markdown(report: dict) -> str:
    rows = []
    for name in ("probe", "detector"):
        m = report[name]
        for split in ("train", "val", IN_DISTRIBUTION, HELD_OUT):
            if split in m:
                rows.append(f"| {name} | {SPLIT_WORDS[split]} | {_fmt_ci(m[split]['roc_auc'], m[split].get('roc_auc_ci95'))} | "
                            f"{_fmt_ci(m[split]['pr_auc'], m[split].get('pr_auc_ci95'))} | {m[split]['n']} | "
                            f"{m[split]['positives']} |")
    warnings = [f"- **{n}: {report[n]['architecture']} is RANDOMLY INITIALISED** - its numbers say nothing about "
                "what pretrained weights would do." for n in ("probe", "detector") if report[n]["randomly_initialised"]]
    stats = report["label_stats"]
    return "\n".join([
        f"# Evaluation report - detector {report['detector_version']} against probe {report['probe_version']}",
        "",
        *warnings,
        "" if warnings else "",
        f"Positives are images with {report['positive_definition']}. Test split: {report['n_test']} images. "
        "Test (seen generators) is the in-distribution test; held-out generators are the families kept out of "
        "training, against the same test's real images. Intervals: 95 %, source groups resampled.",
        "",
        "| model | split | ROC-AUC [95 % CI] | PR-AUC [95 % CI] | n | positives |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        f"Train-vs-test ROC-AUC gap of the detector: {_fmt(report['detector']['train_test_roc_gap'])}.",
        "",
        "## Operating point",
        _operating_point_markdown(report["operating_point"]),
        "",
        *_sections_markdown(report),
        "## Models",
        f"- probe: embeddings from **{report['probe']['backbone']}** + standardized, class-balanced logistic regression"
        f"{_selection_words(report['probe'].get('selection'))}",
        f"- detector: **{report['detector']['backbone']}** fine-tuned end to end on native-resolution crops",
        "",
        "## Teacher labels",
        f"- {stats['n']} images; {stats['share_below_0_1']:.1%} score below 0.1, "
        f"{stats['share_at_or_above_0_5']:.1%} at or above 0.5; the loss's pos_weight {_fmt(stats['loss_pos_weight'])}",
        "",
        "## Curves (in-distribution test)",
        "![ROC](roc.png) ![PR](pr.png) ![Reliability](reliability.png) ![Slices](slices.png)",
        "",
        f"Made by Dagster run `{report['created_by'].get('run_id')}`, code version "
        f"`{report['created_by'].get('git_commit')}`.",
        "",
    ])


def _selection_words(selection: dict | None) -> str:
    """How the probe's C was chosen, with the train-versus-validation gap it left."""
    if not selection:
        return ""
    tried = ", ".join(f"{c:g}: {_fmt(m)}" for c, m in zip(selection["grid"], selection["cv_roc_auc"]))
    return (f"; C = {selection['chosen_c']:g}, chosen by {selection['by']} (tried {tried}); "
            f"train minus validation ROC-AUC {_fmt(selection.get('train_minus_val_roc_auc'))}")


def summary_lines(report: dict) -> list[str]:
    """What `detector-pipeline run` prints: both test sets for both models, and the real-only slice."""
    lines = []
    for name in ("probe", "detector"):
        m = report[name]
        for split, words in ((IN_DISTRIBUTION, "seen generators"), (HELD_OUT, "held-out generators")):
            if split in m:
                lines.append(f"{name:8s} test, {words:19s} ROC-AUC {_fmt_ci(m[split]['roc_auc'], m[split].get('roc_auc_ci95'))}"
                             f"  PR-AUC {_fmt_ci(m[split]['pr_auc'], m[split].get('pr_auc_ci95'))}")
        lines.append(f"{'':8s} ({m['backbone']}{', RANDOMLY INITIALISED' if m['randomly_initialised'] else ''})")
    people = ((report.get("metrics") or {}).get("detector") or {}).get("human_verdicts")
    if people:
        lines.append(f"detector against human verdicts ({people['n']} test images people judged): ROC-AUC "
                     f"{_ci(people['roc_auc'])}")
    held_out_real = ((report.get("slices") or {}).get("real_only_false_positive_rate") or {}).get("held_out_sources")
    if held_out_real and held_out_real.get("n_real"):
        lines.append(f"real photographs from sources held out of training: false-positive rate "
                     f"{_ci(held_out_real['false_positive_rate'])} at threshold "
                     f"{report['operating_point']['threshold']:.3f} ({held_out_real['n_real']} images)")
    return lines


def _ci(entry: dict | None) -> str:
    if not entry or entry.get("value") is None:
        return "n/a"
    ci = entry.get("ci95")
    return f"{entry['value']:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")


def _sections_markdown(report: dict) -> list[str]:
    out = []
    metrics = report.get("metrics")
    if metrics:
        out += ["## Test metrics with 95 % intervals (source groups resampled)", "",
                "| model | test | against | ROC-AUC | PR-AUC |", "|---|---|---|---|---|"]
        for model, entry in metrics.items():
            if not isinstance(entry, dict):
                continue
            for which, part in (("seen generators", entry), ("held-out generators", entry.get("held_out") or {})):
                for against in ("teacher", "ground_truth", "human_verdicts"):
                    if against in part:
                        out.append(f"| {model} | {which} | {against.replace('_', ' ')} | {_ci(part[against]['roc_auc'])} | "
                                   f"{_ci(part[against]['pr_auc'])} |")
        out.append("")
    for missing in (metrics or {}).get("offtheshelf_unavailable", []):
        out += [f"- Off-the-shelf detector **{missing['name']}** was not scored: {missing['reason']}."]
    if (metrics or {}).get("offtheshelf_unavailable"):
        out.append("")
    cal = report.get("calibration")
    if cal and cal.get("after"):
        out += ["## Calibration (detector, in-distribution test)",
                f"ECE {cal['before']['ece']:.3f} -> {cal['after']['ece']:.3f}, Brier {cal['before']['brier']:.3f} -> "
                f"{cal['after']['brier']:.3f} ({cal['method']}).", ""]
    slices = report.get("slices") or {}
    rows = slices.get("family_vs_real", {}).get("detector")
    if rows:
        out += ["## Per generator family (detector; each family's images against all real test images)", "",
                "| family | held out of training | AI images | ROC-AUC | TPR at threshold |", "|---|---|---|---|---|"]
        out += [f"| {r['family']} | {'yes' if r['held_out_of_training'] else 'no'} | {r['n_ai']} | {_fmt(r['roc_auc'])} | "
                f"{_fmt(r['tpr_at_threshold'])} |" for r in rows]
        out.append("")
    held_out_real = ((report.get("slices") or {}).get("real_only_false_positive_rate") or {}).get("held_out_sources")
    if held_out_real and held_out_real.get("n_real"):
        out += ["## Real photographs from sources held out of training",
                f"{held_out_real['n_real']} real images from {held_out_real['sources']} source groups "
                f"({', '.join(held_out_real.get('packages') or [])}): false-positive rate at the operating threshold "
                f"{_ci(held_out_real['false_positive_rate'])}.", ""]
    rob = report.get("robustness")
    if rob:
        out += ["## Robustness (detector, in-distribution test, fixed threshold)", "", "| perturbation | ROC-AUC | TPR | FPR |",
                "|---|---|---|---|", f"| none | {_fmt(rob['clean']['roc_auc'])} | {_fmt(rob['clean']['recall'])} | "
                f"{_fmt(rob['clean']['false_positive_rate'])} |"]
        out += [f"| {k} | {_fmt(v['roc_auc'])} | {_fmt(v['tpr'])} | {_fmt(v['fpr'])} |"
                for k, v in rob.items() if isinstance(v, dict) and "tpr" in v]
        out.append("")
    sb = report.get("shortcut_baselines")
    if sb:
        out += ["## Shortcut baselines", f"- metadata only ({', '.join(sb['metadata'].get('features') or [])}): ROC-AUC "
                f"{_fmt(sb['metadata'].get('roc_auc'))}: {sb['metadata']['verdict']}"]
        out += [f"- format swap ({k}): ROC-AUC {_fmt(v['roc_auc'])} (clean {_fmt(v['clean_roc_auc'])}): {v['verdict']}"
                for k, v in sb["format_swap"].items()]
        content = sb.get("content")
        if content:
            random = " (RANDOMLY INITIALISED features)" if content.get("randomly_initialised") else ""
            out += [f"- content only ({content['what']}){random}: ROC-AUC "
                    f"{_fmt_ci(content['roc_auc'], content.get('roc_auc_ci95'))}: {content['verdict']}"]
        out.append("")
    ab = report.get("ablations")
    if ab and ab.get("claims"):
        out += ["## The article's claims (ablations)", "",
                f"Paired on the {ab.get('test', 'test')}; interval: {ab.get('interval', '95 %')}. The minimum "
                "detectable difference is the true difference the design finds with 80 % power.", "",
                "| claim | verdict | difference in ROC-AUC [95 % CI] | seeds | minimum detectable difference |",
                "|---|---|---|---|---|"]
        out += [f"| {c['claim']} | **{c['verdict']}** | {_ci({'value': c['difference'], 'ci95': c['ci95']})} | "
                f"{c.get('n_seeds')} | {_fmt(c.get('minimum_detectable_difference'))} |" for c in ab["claims"]]
        out.append("")
    elif ab:
        out += ["## Ablations", f"Not run for this model: {ab.get('how')}.", ""]
    card = report.get("model_card")
    if card and card.get("known_failure_slices"):
        out += ["## Known failure slices", *[f"- {f}" for f in card["known_failure_slices"]], ""]
    return out


def _operating_point_markdown(op: dict) -> str:
    test = op[IN_DISTRIBUTION]
    return (f"Threshold {op['threshold']:.4f} ({op['rule']}; validation precision {_fmt(op['val_precision'])}, "
            f"recall {_fmt(op['val_recall'])}). On the in-distribution test: precision {_fmt(test['precision'])}, recall "
            f"{_fmt(test['recall'])}, false-positive rate {_fmt(test['false_positive_rate'])}, confusion {test['confusion']}.")


def write_report(reports_dir: Path, report: dict, figures: dict[str, bytes], tables: dict[str, bytes]) -> Path:
    """Writes data/reports/<report_id>/{<table>,<figure>.png,report.md,report.json} (report.json last: a
    folder with one holds everything) and points `latest` at it."""
    folder = reports_dir / report["report_id"]
    for name, parquet in tables.items():
        write_bytes_atomic(folder / name, parquet)
    for name, png in figures.items():
        write_bytes_atomic(folder / f"{name}.png", png)
    write_bytes_atomic(folder / "report.md", report_markdown(report).encode())
    write_json_atomic(folder / "report.json", report)
    point_latest(reports_dir, folder.name)
    return folder


def point_latest(reports_dir: Path, name: str) -> None:
    """Atomically repoint the `latest` symlink."""
    link = reports_dir / "latest"
    with atomic_path(link) as tmp:
        tmp.unlink()
        os.symlink(name, tmp)
