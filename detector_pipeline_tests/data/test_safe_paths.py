import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detector_pipeline.data.safe_paths import UnsafePath, resolve_inside


@settings(max_examples=200, deadline=None)
@given(path=st.one_of(st.text(max_size=60), st.lists(st.sampled_from(["..", ".", "a", "b", "/", "//", "~"]), max_size=8).map("/".join)))
def test_result_is_always_inside_the_root(tmp_path_factory, path):
    root = tmp_path_factory.getbasetemp() / "root"
    root.mkdir(exist_ok=True)
    try:
        resolved = resolve_inside(root, path)
    except UnsafePath:
        return
    real_root = Path(os.path.realpath(root))
    assert resolved == real_root or real_root in resolved.parents


@pytest.mark.parametrize("path,reason", [
    ("/etc/passwd", "absolute"), ("../outside.jpg", "escapes"), ("a/../../x", "escapes"),
    (None, "null"), ("", "empty"), ("a\x00b", "NUL"), ("x" * 2000, "longer"), (3, "not text"),
])
def test_unsafe_paths_are_refused_with_a_reason(tmp_path, path, reason):
    with pytest.raises(UnsafePath, match=reason):
        resolve_inside(tmp_path, path)


def test_symlink_out_of_the_root_is_refused(tmp_path):
    root, outside = tmp_path / "root", tmp_path / "secret.jpg"
    root.mkdir()
    outside.write_bytes(b"x")
    (root / "link.jpg").symlink_to(outside)
    with pytest.raises(UnsafePath, match="escapes"):
        resolve_inside(root, "link.jpg")
