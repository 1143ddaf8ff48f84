from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from detector_pipeline.data.labels import LabelsError, load_labels, validate_labels


def _image(path, value=0, size=(40, 40), mode="RGB"):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value).save(path)


def test_bad_rows_are_quarantined_with_reasons_and_rows_are_conserved(tmp_path):
    root = tmp_path / "root"
    for i in range(4):
        _image(root / f"ok{i}.png", (i * 40, 0, 0))
    (root / "empty.jpg").write_bytes(b"")
    (root / "text.jpg").write_bytes(b"this is not an image")
    rows = [
        ("ok0.png", 0.1), ("ok1.png", 0.9), ("missing.png", 0.2), ("empty.jpg", 0.2), ("text.jpg", 0.2),
        ("ok2.png", float("nan")), ("ok2.png", 1.5), ("../escape.png", 0.1), (None, 0.1),
        ("ok3.png", 0.2), ("ok3.png", 0.8),  # the same image twice, conflicting scores
        ("ok0.png", 0.1),  # an exact duplicate of the first row
    ]
    table = pd.DataFrame(rows, columns=["image_path", "ai_score"])
    result = validate_labels(table, root)
    reasons = dict(zip(result.quarantined["row"], result.quarantined["reason"]))
    assert result.n_input == len(table)
    assert sorted(result.accepted["row"]) == [0, 1]
    assert reasons[2] == "missing file" and reasons[3] == "empty file" and reasons[4] == "not an image"
    assert reasons[5] == "NaN score" and "outside [0, 1]" in reasons[6]
    assert "escapes" in reasons[7] and reasons[8] == "null path"
    assert "conflicting" in reasons[9] and "conflicting" in reasons[10]
    assert reasons[11] == "duplicate of row 0"
    assert list(result.accepted.columns[-4:]) == ["sha256", "width", "height", "file"]
    assert all(Path(f).is_absolute() and Path(f).is_relative_to(root.resolve()) for f in result.accepted["file"])


def test_batch_level_problems_raise_one_clear_error(tmp_path):
    with pytest.raises(LabelsError, match="not found"):
        load_labels(tmp_path / "none.parquet", tmp_path)
    (tmp_path / "bad.parquet").write_bytes(b"garbage")
    with pytest.raises(LabelsError, match="unreadable"):
        load_labels(tmp_path / "bad.parquet", tmp_path)
    pd.DataFrame({"image_path": ["a"]}).to_parquet(tmp_path / "noscore.parquet")
    with pytest.raises(LabelsError, match="ai_score"):
        load_labels(tmp_path / "noscore.parquet", tmp_path)


@pytest.mark.parametrize("mode,value", [("L", 128), ("RGBA", (10, 20, 30, 128)), ("P", 3), ("CMYK", (0, 0, 0, 0)), ("LA", (5, 200))])
def test_other_colour_modes_are_accepted(tmp_path, mode, value):
    ext = "jpg" if mode == "CMYK" else "png"
    _image(tmp_path / f"x.{ext}", value, mode=mode)
    result = validate_labels(pd.DataFrame({"image_path": [f"x.{ext}"], "ai_score": [0.3]}), tmp_path)
    assert len(result.accepted) == 1, result.quarantined


def test_decompression_bomb_refused_before_decoding(tmp_path):
    header = Image.new("L", (1, 1))
    header.save(tmp_path / "small.png")
    # A PNG whose header declares 100000 x 100000 pixels.
    data = bytearray((tmp_path / "small.png").read_bytes())
    import struct
    import zlib

    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    start = data.index(b"IHDR")
    data[start + 4:start + 17] = ihdr
    data[start + 17:start + 21] = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    (tmp_path / "bomb.png").write_bytes(bytes(data))
    result = validate_labels(pd.DataFrame({"image_path": ["bomb.png"], "ai_score": [0.3]}), tmp_path)
    assert "decompression bomb" in result.quarantined["reason"].iloc[0]
    assert np.isfinite(len(result.accepted))
