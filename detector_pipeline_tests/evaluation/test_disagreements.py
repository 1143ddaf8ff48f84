import io

import numpy as np
import pandas as pd
from PIL import Image

from detector_pipeline.evaluation import disagreements


def _scored():
    return pd.DataFrame({"ai_score": [0.05, 0.9, 0.7, 0.1, 0.5], "p_ai": [0.06, 0.1, 0.95, 0.8, 0.5],
                         "file": [f"img/{i}.png" for i in range(5)]})


def test_queue_is_largest_disagreement_first_with_its_direction():
    queue = disagreements.review_queue(_scored(), threshold=0.6, k=3)
    assert queue["rank"].tolist() == [1, 2, 3]
    # on the teacher's scale (threshold 0.6 -> 0.5): 0.1 -> 0.083, 0.8 -> 0.75, 0.95 -> 0.9375
    assert queue["file"].tolist() == ["img/1.png", "img/3.png", "img/2.png"]
    assert np.allclose(queue["disagreement"], [0.9 - 0.1 / 1.2, 0.75 - 0.1, 0.9375 - 0.7])
    assert queue["kind"].tolist() == ["teacher AI, detector real", "teacher real, detector AI", "same decision"]


def test_the_detector_threshold_lands_on_the_teacher_boundary_and_order_is_kept():
    p = np.array([0.0, 0.3, 0.9, 0.95, 1.0])
    mapped = disagreements.on_teacher_scale(p, 0.9)
    assert np.allclose(mapped, [0.0, 0.5 / 3, 0.5, 0.75, 1.0]) and np.all(np.diff(mapped) > 0)


def test_a_real_image_the_teacher_calls_ai_outranks_the_detectors_usual_upward_shift():
    """pos_weight lifts most real images' P(AI) well above the teacher's score without crossing the
    threshold; that is no disagreement next to a teacher AI call the detector rejects."""
    scored = pd.DataFrame({"ai_score": [0.02, 0.8], "p_ai": [0.85, 0.3], "file": ["shifted", "teacher_ai"]})
    assert disagreements.review_queue(scored, threshold=0.92, k=1)["file"].tolist() == ["teacher_ai"]


def test_k_larger_than_the_batch_gives_every_image():
    assert len(disagreements.review_queue(_scored(), 0.6, k=50)) == 5


def test_contact_sheet_is_a_png_grid_and_a_missing_file_is_a_grey_tile(tmp_path):
    Image.new("RGB", (300, 200), (250, 10, 10)).save(tmp_path / "a.png")
    queue = disagreements.review_queue(_scored(), 0.6, k=3)
    png = disagreements.contact_sheet(queue, [tmp_path / "a.png", tmp_path / "gone.png", tmp_path / "a.png"], columns=2)
    sheet = Image.open(io.BytesIO(png))
    assert sheet.format == "PNG"
    sheet = sheet.convert("RGB")
    assert sheet.size == (2 * disagreements.THUMB, 2 * (disagreements.THUMB + disagreements.CAPTION))
    assert sheet.getpixel((10, 10))[0] > 200  # the red image, cropped to fill its tile
    assert sheet.getpixel((disagreements.THUMB + 10, 10)) == (128, 128, 128)
