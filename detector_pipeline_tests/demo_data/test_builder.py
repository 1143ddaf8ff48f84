"""Pieces of the demo-set builder that run without its downloads."""

import numpy as np
import pytest

from detector_pipeline.demo_data import encoding, teacher
from detector_pipeline.demo_data.debian_copyright import licence_for, parse_stanzas
from detector_pipeline.demo_data.realesrgan import last_output_blob

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

License: GPL-2+
 full text here
"""


def test_dep5_licence_by_file_name_with_fallback():
    stanzas = parse_stanzas(COPYRIGHT)
    assert licence_for(stanzas, "/usr/share/backgrounds/Bridge_by_Sander_Klootwijk.jpg").license == "CC-BY-SA-4.0"
    fallback = licence_for(stanzas, "/usr/share/wallpapers/Kite/contents/images/2560x1600.jpg")
    assert fallback.license == "GPL-2+" and fallback.copyright == "2014 Some Team"


def test_ncnn_output_blob_is_read_from_the_last_layer():
    param = "7767517\n3 3\nInput data 0 1 data\nConvolution Conv_1 1 1 data 9 0=3\nConvolution Conv_2 1 1 9 output 0=3 1=3\n"
    assert last_output_blob(param) == "output"


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
    n = 20000
    is_ai = rng.random(n) < 0.14
    family = np.where(is_ai, rng.choice(list(teacher.TEACHER_RECALL), n), "real")
    scores = teacher.teacher_scores(is_ai, family, rng)
    assert 0.72 < (scores < 0.1).mean() < 0.78
    assert 0.10 < (scores >= 0.5).mean() < 0.13
    recall = {f: (scores[family == f] >= 0.5).mean() for f in teacher.TEACHER_RECALL}
    for f, expected in teacher.TEACHER_RECALL.items():
        assert abs(recall[f] - expected) < 0.04
