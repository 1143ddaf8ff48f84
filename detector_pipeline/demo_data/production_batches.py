"""The demo's production rehearsal: the demo set cut into a smaller base and two later label batches
whose images no model trained on the base has seen.

    detector-pipeline demo production [--out data/production-demo]

- `base/labels.parquet`: the demo's labels without the two batches' source groups (image paths stay
  relative to data/demo);
- `batches/<name>/`: a label batch as `data/incoming/` expects it (labels.parquet and its images),
  without the `_READY` marker: copy the folder into data/incoming/, then create the marker.

The story: the base holds real photographs and diffusion pictures (text-to-image, image edits), so
the promoted detector knows diffusion models. Then AI upscalers ("enhance" apps, GAN and CNN
super-resolution) reach the feed: a kind of generator the detector never saw, not even in its test
split. One batch holds only what the base knows (real photographs, diffusion pictures); the other
holds every upscaler family with real photographs.

Whole source groups move, so no crop of a batch's photographs is in the base. A photograph's
upscaled crop shows the same scene as its real crops; the upscaled crops of the base's photographs
(and of the first batch's) are left out of the rehearsal, so the upscalers appear only in the second
batch.
"""

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from detector_pipeline.data.batches import LABELS_FILE
from detector_pipeline.demo_data.build import HELD_OUT_FAMILY

SEEN_BATCH = "batch-01-known-generators"
UNSEEN_BATCH = "batch-02-new-generator"
PHOTO_GROUPS = 30  # photographs per batch (their real crops, and for the second batch their upscaled crops)
TEMPLATE_GROUPS = 12  # diffusion pictures in the first batch
KNOWN_FAMILIES = ("real", "text_to_image", "image_edit")


@dataclass(frozen=True)
class ProductionDemo:
    base_labels: Path
    images_root: Path
    batches: dict[str, Path]  # name -> folder


def production_groups(labels: pd.DataFrame, seed: int = 0) -> dict[str, set[str]]:
    """Source groups per batch: a seeded draw of photographs for each, diffusion templates for the
    first, and every photograph the held-out upscaler used for the second. Sources of real
    photographs held out of training stay in the base (its test of photographs of an unseen kind)."""
    groups = labels["source_group"].astype(str)
    templates = sorted(set(groups[~groups.str.startswith("photo:")]))
    esrgan = set(groups[labels["family"] == HELD_OUT_FAMILY])
    held_out_sources = set(groups[labels["source_held_out"].fillna(False).astype(bool)])
    photos = sorted(set(groups[groups.str.startswith("photo:")]) - esrgan - held_out_sources)
    rng = np.random.default_rng(seed)
    drawn = rng.choice(photos, 2 * PHOTO_GROUPS, replace=False)
    return {SEEN_BATCH: set(drawn[:PHOTO_GROUPS]) | set(rng.choice(templates, TEMPLATE_GROUPS, replace=False)),
            UNSEEN_BATCH: set(drawn[PHOTO_GROUPS:]) | esrgan}


def write_production_demo(labels_path: Path, images_root: Path, out: Path, seed: int = 0) -> ProductionDemo:
    labels = pd.read_parquet(labels_path)
    by_batch = production_groups(labels, seed)
    groups = labels["source_group"].astype(str)
    known = labels["family"].isin(KNOWN_FAMILIES)
    rows_of = {SEEN_BATCH: groups.isin(by_batch[SEEN_BATCH]) & known, UNSEEN_BATCH: groups.isin(by_batch[UNSEEN_BATCH])}
    (out / "base").mkdir(parents=True, exist_ok=True)
    base_labels = out / "base" / LABELS_FILE
    labels[~groups.isin(set().union(*by_batch.values())) & known].to_parquet(base_labels, index=False)
    batches = {}
    for name, mask in rows_of.items():
        folder = out / "batches" / name
        if folder.exists():
            shutil.rmtree(folder)
        rows = labels[mask]
        for relative in rows["image_path"]:
            _link_or_copy(images_root / relative, folder / relative)
        rows.to_parquet(folder / LABELS_FILE, index=False)
        batches[name] = folder
    return ProductionDemo(base_labels, images_root, batches)


def _link_or_copy(source: Path, target: Path) -> None:
    """A hard link where the file system allows it (no second copy on disk), else a copy."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)
