"""The benchmark on tiny models: every figure bench.json promises is there and consistent. Speeds are
reported, never asserted."""

from dataclasses import replace

import numpy as np
from PIL import Image

from detector_pipeline import bench
from detector_pipeline.bench.engines import DETECTOR_CANDIDATES, EMBEDDING_CANDIDATES
from detector_pipeline.config.profiles import get_profile


def _photos(folder) -> tuple:
    folder.mkdir()
    rng = np.random.default_rng(0)
    paths = []
    for i, size in enumerate([(480, 360), (640, 400)]):
        path = folder / f"photo{i}.jpg"
        Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path, quality=90)
        paths.append(path)
    return tuple(paths)


def test_bench_reports_every_stage_incremental_cost_memory_engines_and_decoding(tiny_dataset, tmp_path):
    profile = get_profile("tiny", tmp_path / "no-weights")
    profile = replace(profile, embedding=replace(profile.embedding, engine="int8"))
    paths = tuple(bench.sample_images(tiny_dataset, tiny_dataset.parent, 20))
    plan = bench.BenchPlan(profile, paths, device="cpu", model_only_batches=2, warmup_batches=1, scoring_repeats=2,
                           training_epochs=2, memory_images=4, memory_factor=3, engine_images=8,
                           probe_labels=tiny_dataset, decode_photos=_photos(tmp_path / "photos"))
    result = bench.run_bench(plan, log=lambda _: None)

    assert result["n_images"] == 20 and result["machine"]["device"] == "cpu"
    for stage in bench.STAGES:
        record = result["stages"][stage]
        assert record["model_only_img_s"] > 0 and record["end_to_end_img_s"] > 0 and record["peak_rss_mb"] > 0
        assert abs(record["efficiency"] - record["end_to_end_img_s"] / record["model_only_img_s"]) < 0.01
        before, after = record["model_only_before_after_img_s"]
        assert abs(record["model_only_img_s"] - (before + after) / 2) < 0.01
        assert "RANDOMLY INITIALISED" in record["model"]  # the tiny profile has no pretrained weights
    assert result["stages"]["scoring"]["images"] == result["stages"]["training"]["images"] == 40
    incremental = result["incremental"]
    assert incremental["new_images"] == incremental["computed"] == 1
    assert result["incremental_fraction"] == incremental["incremental_fraction"] > 0
    for stage in ("embedding", "scoring"):
        assert result["memory_scaling"][stage]["images"] == [4, 12]
    assert result["stages"]["embedding"]["engine"] == "int8"

    engines = result["engines"]
    assert engines["embedding"]["default"] == "int8" and engines["detector"]["default"] == "eager_fp32"
    for role, candidates, fidelity in (("embedding", EMBEDDING_CANDIDATES, "cosine_min"),
                                       ("detector", DETECTOR_CANDIDATES, "max_abs_delta_p")):
        figures = engines[role]["candidates"]
        assert list(figures) == [c.name for c in candidates]
        assert figures["eager_fp32"]["speedup"] == 1.0 and figures["eager_fp32"]["faithful"]
        for name, entry in figures.items():  # each ran, or says why not
            assert ("img_s" in entry and fidelity in entry and "faithful" in entry) or entry["error"], name
    assert engines["embedding"]["candidates"]["int8"]["cosine_min"] >= 0.99
    probe = engines["probe_fidelity"]
    assert set(probe["engines"]) == {"eager", "int8"} and probe["images"] == 64
    assert isinstance(probe["within_eager_interval"], bool)

    for case in ("1600x1200", "largest"):
        decode = result["decode"][case]
        assert decode["full_decode_crop_img_s"] > 0 and decode["region_decode_img_s"] > 0
        assert decode["crops_checked"] > 0 and decode["pixels_differing"] == 0
        rows = decode["restart_copy"]
        assert rows["region_decode_img_s"] > 0 and rows["pixels_differing"] == 0 and rows["crops_checked"] > 0
    assert result["decode"]["1600x1200"]["size"] == [1600, 1200]
    assert result["decode"]["largest"]["photo"] == "photo1.jpg"


def test_sample_images_is_deterministic_and_caps_at_the_table_size(tiny_dataset):
    assert len(set(bench.sample_images(tiny_dataset, tiny_dataset.parent, 1000))) == 64
    ten = bench.sample_images(tiny_dataset, tiny_dataset.parent, 10)
    assert len(ten) == 10 and ten == bench.sample_images(tiny_dataset, tiny_dataset.parent, 10)
    assert ten != sorted(ten)  # a random mix, not the first rows
