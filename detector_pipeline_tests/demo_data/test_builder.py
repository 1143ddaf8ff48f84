"""Pieces of the demo-set builder that run without its downloads."""

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from detector_pipeline.demo_data import build, encoding, histories, teacher
from detector_pipeline.demo_data.debian_copyright import licence_for, parse_stanzas
from detector_pipeline.demo_data.upscalers import first_input_blob, last_output_blob

COPYRIGHT = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/

Files: *
Copyright: 2014 Some Team
License: GPL-2+

Files: 16.04/Bridge_by_Sander_Klootwijk.jpg
Copyright: 2018. Sander Klootwijk
License: CC-BY-SA-4.0

Files: graphics/*
       themes/a.svg
Copyright: 2012, Someone
License: CC-BY-SA-3.0

Files: original-files/*
Copyright: 2020 A Photographer
License: CC-BY-SA-4.0

License: GPL-2+
 full text here
"""


def test_dep5_licence_by_file_name_with_fallback():
    stanzas = parse_stanzas(COPYRIGHT)
    assert licence_for(stanzas, "/usr/share/backgrounds/Bridge_by_Sander_Klootwijk.jpg").license == "CC-BY-SA-4.0"
    fallback = licence_for(stanzas, "/usr/share/wallpapers/Kite/contents/images/2560x1600.jpg")
    assert fallback.license == "GPL-2+" and fallback.copyright == "2014 Some Team"
    in_folder = licence_for(stanzas, "/usr/share/forensics-samples/original-files/pic1/IMG_1054.JPG")
    assert in_folder.license == "CC-BY-SA-4.0"
    assert licence_for(stanzas, "/usr/share/other/IMG_1054.JPG").license == "GPL-2+"


def test_ncnn_output_blob_is_read_from_the_last_layer():
    param = "7767517\n3 3\nInput data 0 1 data\nConvolution Conv_1 1 1 data 9 0=3\nConvolution Conv_2 1 1 9 output 0=3 1=3\n"
    assert last_output_blob(param) == "output" and first_input_blob(param) == "data"


@pytest.mark.parametrize("size", [(1000, 700), (400, 300), (260, 2000)])
def test_crops_are_native_inside_and_sized_as_promised(size):
    rng = np.random.default_rng(0)
    boxes = encoding.sample_square_crops(size, 10, rng, multiple_of=4)
    assert boxes
    for left, top, side in boxes:
        assert side % 4 == 0 and encoding.CROP_SIDES[0] - 4 <= side <= encoding.CROP_SIDES[1]
        assert 0 <= left and left + side <= size[0] and 0 <= top and top + side <= size[1]


def test_simulated_teacher_has_the_documented_shape():
    rng = np.random.default_rng(0)
    n = 60000
    is_ai = rng.random(n) < 0.14
    family = np.where(is_ai, rng.choice(list(teacher.TEACHER_RECALL), n), "real")
    scores = teacher.teacher_scores(is_ai, family, rng)
    assert 0.72 < (scores < 0.1).mean() < 0.78
    assert 0.10 < (scores >= 0.5).mean() < 0.13
    recall = {f: (scores[family == f] >= 0.5).mean() for f in teacher.TEACHER_RECALL}
    for f, expected in teacher.TEACHER_RECALL.items():
        assert abs(recall[f] - expected) < 0.04


def test_processing_histories_are_drawn_in_their_documented_shares():
    rng = np.random.default_rng(0)
    drawn = pd.Series([histories.draw_history(rng) for _ in range(20000)]).value_counts(normalize=True)
    for name, share in histories.HISTORIES.items():
        assert abs(drawn[name] - share) < 0.01


@pytest.mark.parametrize("history", list(histories.HISTORIES))
def test_a_history_resizes_and_recompresses_as_it_says(history):
    rng = np.random.default_rng(1)
    image = Image.fromarray(np.random.default_rng(2).integers(0, 255, (300, 340, 3), dtype=np.uint8))
    out, words = histories.apply_history(image, history, rng)
    resized = "downscaled" in history
    assert (out.size != image.size) == resized and ("resized" in words) == resized
    if resized:
        assert histories.SMALLEST_SIDE <= min(out.size) <= 0.85 * 300 + 1
        assert abs(out.width / out.height - 340 / 300) < 0.02  # the aspect ratio is kept
    assert ("JPEG quality" in words) == ("recompressed" in history)
    assert (words == "none") == (history == "none")


def _candidates(rows: list[tuple]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["is_ai", "source_group", "subject", "width", "bytes", "pixel_mean", "pixel_std"])


def test_real_crops_are_matched_from_the_same_photograph_first_and_used_once():
    rng = np.random.default_rng(0)
    table = _candidates([
        (True, "photo:a", "nature", 300, 30000, 100, 40),
        (True, "template:t", "generated scene", 300, 30000, 100, 40),
        *[(False, group, subject, 300, 30000, 100, 40) for group, subject in
          [("photo:a", "nature"), ("photo:b", "person"), ("photo:c", "nature")] for _ in range(3)],
        (False, "photo:d", "nature", 400, 60000, 200, 80),  # far from every AI image
    ])
    partner = build.match_real_to_ai(table, 2, rng)
    assert len(partner) == 4 and sorted(partner.values()) == [0, 0, 1, 1]  # two each, no crop twice
    assert all(table.loc[r, "source_group"] == "photo:a" for r, a in partner.items() if a == 0)
    assert all(table.loc[r, "subject"] == "person" for r, a in partner.items() if a == 1)
