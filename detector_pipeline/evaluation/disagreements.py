"""The review queue: the images of a batch where the detector and its teacher disagree most. Each is
either a teacher error (the label is wrong) or a generator the detector has not learnt; only a person
looking at it can tell which.

The detector's P(AI) is not on the teacher's scale: pos_weight shifts it up (most real images score
well above the teacher's 0.05), and its decision threshold is not 0.5. So it is first mapped onto the
teacher's scale by the monotone, piecewise-linear map that sends its threshold to 0.5 (0 to 0, 1 to
1): the ranking and every decision stay as they are. Disagreement is |mapped P(AI) - ai_score|: how
far the two sit from each other when each one's decision boundary is at 0.5. The `kind` column says
which way: the teacher says AI (score >= 0.5) and the detector stays below its threshold, or the
reverse.
"""

import io
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw, ImageOps

from detector_pipeline.data.images import open_rgb

DEFAULT_K = 50
TEACHER_POSITIVE = 0.5
THUMB = 112
CAPTION = 30
COLUMNS = 10


def disagreement_kind(teacher: float, p_ai: float, threshold: float) -> str:
    teacher_ai, detector_ai = teacher >= TEACHER_POSITIVE, p_ai >= threshold
    if teacher_ai and not detector_ai:
        return "teacher AI, detector real"
    if detector_ai and not teacher_ai:
        return "teacher real, detector AI"
    return "same decision"


def on_teacher_scale(p_ai: np.ndarray, threshold: float) -> np.ndarray:
    """The detector's P(AI) with its threshold moved to the teacher's 0.5, linearly on each side."""
    p = np.asarray(p_ai, float)
    below = TEACHER_POSITIVE * p / threshold
    above = TEACHER_POSITIVE + (1 - TEACHER_POSITIVE) * (p - threshold) / (1 - threshold) if threshold < 1 else 1.0
    return np.where(p < threshold, below, above)


def review_queue(scored: pd.DataFrame, threshold: float, k: int = DEFAULT_K) -> pd.DataFrame:
    """The `k` rows of `scored` (columns ai_score, p_ai, and whatever else describes an image) with
    the largest disagreement, largest first; ties in image order."""
    table = scored.assign(p_ai_on_teacher_scale=on_teacher_scale(scored["p_ai"], threshold))
    table["disagreement"] = (table["p_ai_on_teacher_scale"] - table["ai_score"]).abs()
    table["kind"] = [disagreement_kind(t, p, threshold) for t, p in zip(table["ai_score"], table["p_ai"])]
    order = np.argsort(-table["disagreement"].to_numpy(), kind="stable")[:k]
    queue = table.iloc[order].reset_index(drop=True)
    queue.insert(0, "rank", np.arange(1, len(queue) + 1))
    return queue


def _thumbnail(path: Path) -> Image.Image:
    try:
        image = open_rgb(path)
    except Exception:  # noqa: BLE001 (a file gone since scoring gets a grey tile, not a failed sheet)
        return Image.new("RGB", (THUMB, THUMB), (128, 128, 128))
    return ImageOps.fit(image, (THUMB, THUMB), Image.Resampling.BICUBIC)


def contact_sheet(queue: pd.DataFrame, files: list[Path], columns: int = COLUMNS) -> bytes:
    """A PNG grid of thumbnails, each with its rank, the teacher's score (T), the detector's P(AI) (D)
    and, in brackets, the detector's on the teacher's scale; red where the teacher says AI and the
    detector does not, blue for the reverse. 256 colours: a third of the bytes, enough to judge a
    picture by, and small enough for the asset's metadata."""
    rows = max(1, -(-len(queue) // columns))
    sheet = Image.new("RGB", (columns * THUMB, rows * (THUMB + CAPTION)), "white")
    draw = ImageDraw.Draw(sheet)
    colours = {"teacher AI, detector real": (200, 30, 30), "teacher real, detector AI": (30, 60, 200)}
    for i, (row, path) in enumerate(zip(queue.itertuples(index=False), files)):
        x, y = (i % columns) * THUMB, (i // columns) * (THUMB + CAPTION)
        sheet.paste(_thumbnail(path), (x, y))
        colour = colours.get(row.kind, (60, 60, 60))
        draw.text((x + 3, y + THUMB + 2), f"#{row.rank} T {row.ai_score:.2f}", fill=colour)
        draw.text((x + 3, y + THUMB + 15), f"D {row.p_ai:.2f} ({row.p_ai_on_teacher_scale:.2f})", fill=colour)
    buffer = io.BytesIO()
    sheet.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()
