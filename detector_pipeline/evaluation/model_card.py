"""Model cards: what a model version was made from, how, and how well it does."""

import json
from pathlib import Path

from detector_pipeline.registry.artifacts import write_bytes_atomic, write_json_atomic


def model_card(folder: Path) -> dict:
    """A model version's card; {} when it has none."""
    path = folder / "model_card.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def write_model_card(folder: Path, card: dict) -> None:
    write_json_atomic(folder / "model_card.json", card)
    write_bytes_atomic(folder / "model_card.md", model_card_markdown(card).encode())


def model_card_markdown(card: dict) -> str:
    lines = [f"# Model card - {card['kind']} {card['version']}", ""]
    if card.get("randomly_initialised"):
        lines += ["**The backbone is RANDOMLY INITIALISED: these numbers say nothing about pretrained weights.**", ""]
    lines += [
        f"- backbone: {card['backbone_description']}",
        f"- made by Dagster run `{card.get('run_id')}` at git commit `{card.get('git_commit')}`",
        f"- parent (promoted when it was trained): `{card.get('parent_version')}`",
        f"- seed: {card.get('seed')}",
        "",
        "## Data",
        f"- labels version `{card['labels_version']}`: {card['counts']}",
        "",
        "| batch | rows | data version |",
        "|---|---|---|",
        *[f"| {b['batch']} | {b['rows']} | `{b['data_version']}` |" for b in card.get("batches", [])],
        "",
        "## Settings",
        "```json",
        json.dumps(card.get("settings", {}), indent=2, sort_keys=True, default=str),
        "```",
        "",
        "## Metrics",
        "On its training and validation splits; the test figures are in its evaluation reports "
        "(`reports/<version>-<probe version>/report.md`).",
        "",
        "```json",
        json.dumps(card.get("metrics", {}), indent=2, sort_keys=True, default=str),
        "```",
        "",
    ]
    return "\n".join(lines)


def batches_summary(labels) -> list[dict]:
    """Per label batch: rows and the batch's data version (recorded by teacher_labels)."""
    out = []
    for batch, part in labels.groupby("batch", sort=True):
        out.append({"batch": batch, "rows": int(len(part)), "data_version": str(part["batch_version"].iloc[0])})
    return out
