"""The demo's images, family by family: real crops, ComfyUI text-to-image and image-edit outputs, and
super-resolution generators run on crops of the photographs."""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from detector_pipeline.demo_data import encoding, sources
from detector_pipeline.demo_data.upscalers import MODELS, Upscaler

PIXELS_PER_REAL_CROP = 60_000  # candidates; the builder keeps REAL_PER_AI per AI image (build.match_real_to_ai)
MAX_REAL_CROPS_PER_PHOTO = 60
CROPS_PER_LARGE_PREVIEW = 4  # native-resolution crops from each >= 1024 px template preview


@dataclass
class Photo:
    image: Image.Image
    group: str
    package: str
    file: str
    license: str
    copyright: str
    subject: str
    held_out: bool  # its source is kept out of training as a whole


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
    subject: str
    source_held_out: bool = False
    processing: str = "none"


def real_items(photos: list[Photo], rng: np.random.Generator) -> Iterator[Item]:
    for photo in photos:
        w, h = photo.image.size
        n = int(np.clip(w * h // PIXELS_PER_REAL_CROP, 2, MAX_REAL_CROPS_PER_PHOTO))
        for box in encoding.sample_square_crops((w, h), n, rng):
            yield Item(encoding.crop(photo.image, box), False, "real", "camera", photo.group, photo.license,
                       photo.package, photo.file, photo.copyright, f"native crop {box}", photo.subject,
                       source_held_out=photo.held_out)


def _previews(pypi: dict[str, Path]) -> tuple[list[dict], dict[str, tuple[str, Path]]]:
    index_file = pypi["comfyui-workflow-templates-json"] / "comfyui_workflow_templates_json/templates/index.json"
    templates = [t for category in json.loads(index_file.read_text()) for t in category["templates"]]
    files = {}
    for package in sources.COMFYUI_MEDIA_PACKAGES:
        for path in sorted(pypi[package].glob("*/templates/*.webp")):
            files[path.name] = (package, path)
    return templates, files


def _still(path: Path) -> Image.Image | None:
    image = Image.open(path)
    return None if getattr(image, "n_frames", 1) > 1 else image.convert("RGB")


def _template_items(image: Image.Image, family: str, template: dict, package: str, path: Path, what: str,
                    rng: np.random.Generator) -> Iterator[Item]:
    n = CROPS_PER_LARGE_PREVIEW if min(image.size) >= 1024 else 1
    generator = " / ".join(template.get("models") or ["unknown"])
    for box in encoding.sample_square_crops(image.size, n, rng):
        yield Item(encoding.crop(image, box), True, family, generator, f"template:{template['name']}",
                   sources.COMFYUI_LICENSE, f"{package}=={sources.PYPI_PACKAGES[package]}", f"templates/{path.name}",
                   "Comfy Org (workflow template preview)", f"native crop {box} of {what}", "generated scene")


def text_to_image_items(pypi: dict[str, Path], rng: np.random.Generator) -> Iterator[Item]:
    templates, files = _previews(pypi)
    for template in templates:
        name = template["name"]
        tagged = "Text to Image" in template.get("tags", []) and template.get("mediaType") == "image"
        if not (tagged or name in sources.EXTRA_T2I) or name in sources.T2I_EXCLUDED or f"{name}-1.webp" not in files:
            continue
        package, path = files[f"{name}-1.webp"]
        image = _still(path)
        if image is not None:
            yield from _template_items(image, "text_to_image", template, package, path, "the -1 (output) preview", rng)


def image_edit_items(pypi: dict[str, Path], rng: np.random.Generator) -> Iterator[Item]:
    templates, files = _previews(pypi)
    by_name = {t["name"]: t for t in templates}
    sides = {**sources.EDIT_OUTPUT_SIDE, **dict.fromkeys(sources.EDIT_SIDE_UNCERTAIN, 1)}
    for name, side in sides.items():
        if name not in by_name or f"{name}-{side}.webp" not in files:
            continue
        package, path = files[f"{name}-{side}.webp"]
        image = _still(path)
        if image is None:
            continue
        what = (f"the -{side} preview (the edit's output)" if name in sources.EDIT_OUTPUT_SIDE
                else f"the -{side} preview (an edit pair; output side not certain, both sides are generated)")
        yield from _template_items(image, "image_edit", by_name[name], package, path, what, rng)


def upscaler_items(family: str, photos: list[Photo], per_photo: int, upscaler: Upscaler,
                   rng: np.random.Generator) -> Iterator[Item]:
    """Crops of the photographs, downscaled by the model's factor (bicubic) and brought back to their
    size by the generator: the content is the photograph's, only the generator's traces differ."""
    model = MODELS[family]
    for photo in photos:
        for box in encoding.sample_square_crops(photo.image.size, per_photo, rng, multiple_of=model.scale):
            side = box[2]
            small = encoding.crop(photo.image, box).resize((side // model.scale,) * 2, Image.Resampling.BICUBIC)
            yield Item(upscaler.upscale(small), True, family, f"{model.description} (ncnn, CPU)", photo.group,
                       photo.license, f"{model.package}=={sources.PYPI_PACKAGES[model.package]} + {photo.package}",
                       photo.file, photo.copyright, f"crop {box}, bicubic x1/{model.scale}, {family} x{model.scale}",
                       photo.subject, source_held_out=photo.held_out)
