"""Scores cached by content hash: each distinct image is scored once, whatever the order or repeats."""

from pathlib import Path

import numpy as np

from detector_pipeline.evaluation.score_cache import cached_scores


def test_only_images_the_cache_lacks_are_scored_each_content_once(tmp_path):
    calls = []

    def score(files):
        calls.append([f.name for f in files])
        return np.array([float(f.stem[-1]) / 10 for f in files])

    cache = tmp_path / "scores" / "model.parquet"
    first = cached_scores(cache, ["a", "b", "a"], [Path("x1"), Path("x2"), Path("x1")], score)
    second = cached_scores(cache, ["c", "b", "a"], [Path("x3"), Path("x2"), Path("x1")], score)
    third = cached_scores(cache, ["b"], [Path("x2")], score)

    assert calls == [["x1", "x2"], ["x3"]]
    np.testing.assert_allclose(first, [0.1, 0.2, 0.1])
    np.testing.assert_allclose(second, [0.3, 0.2, 0.1])
    np.testing.assert_allclose(third, [0.2])
