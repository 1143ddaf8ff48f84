"""The benchmark on tiny models: every figure bench.json promises is there, of its kind (a speed a
positive finite number, a fidelity within its bounds), and every engine ran. Speeds are never compared
with a figure: a shared machine moves them."""

import math
from dataclasses import replace

import numpy as np
import pytest
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


def _rate(value) -> bool:
    """A measured speed (images/s, seconds, MB): a positive finite number."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


@pytest.mark.slow  # every stage, engine and decode path in fresh processes, torch.compile included
def test_bench_reports_every_stage_incremental_cost_memory_engines_and_decoding(tiny_dataset, tmp_path):
    profile = get_profile("tiny", tmp_path / "no-weights")
    profile = replace(profile, embedding=replace(profile.embedding, engine="int8"))
    paths = tuple(bench.sample_images(tiny_dataset, tiny_dataset.parent, 20))
    plan = bench.BenchPlan(profile, paths, device="cpu", model_only_batches=2, warmup_batches=1, scoring_repeats=2,
                           training_epochs=2, memory_images=4, memory_factor=3, engine_images=8,
                           probe_labels=tiny_dataset, decode_photos=_photos(tmp_path / "photos"), cache_sizes=(100, 3_000))
    result = bench.run_bench(plan, log=lambda _: None)

    assert result["n_images"] == 20 and result["machine"]["device"] == "cpu"
    for stage in bench.STAGES:
        record = result["stages"][stage]
        for figure in ("model_only_img_s", "end_to_end_img_s", "efficiency", "peak_rss_mb"):
            assert _rate(record[figure]), (stage, figure, record[figure])
        before, after = record["model_only_before_after_img_s"]  # measured on either side of end to end
        assert _rate(before) and _rate(after), (stage, before, after)
        assert record["device"] == "cpu" and record["batch_size"] > 0
        assert "RANDOMLY INITIALISED" in record["model"]  # the tiny profile has no pretrained weights
    assert result["stages"]["scoring"]["images"] == result["stages"]["training"]["images"] == 40
    incremental = result["incremental"]
    assert incremental["images"] == 20 and incremental["new_images"] == incremental["computed"] == 1  # 5 %: one
    for figure in ("full_seconds", "incremental_seconds", "incremental_fraction"):
        assert _rate(incremental[figure]), (figure, incremental[figure])
    assert _rate(result["incremental_fraction"])  # bench.json's headline figure
    for stage in ("embedding", "scoring"):
        scaling = result["memory_scaling"][stage]
        assert scaling["images"] == [4, 12] and all(_rate(mb) for mb in scaling["peak_rss_mb"]), scaling
    assert result["stages"]["embedding"]["engine"] == "int8"
    growth = result["cache_growth"]  # adding 100 images to caches of two sizes: one new shard each
    assert growth["batch"] == 100 and list(growth["sizes"]) == ["100", "3000"]
    for size, row in growth["sizes"].items():
        assert row["entries"] == int(size) and row["shards"] == 1 and _rate(row["add_100_seconds"])
        assert _rate(row["cache_mb"]) and _rate(row["add_100_peak_rss_mb"]) and _rate(row["compacted_add_100_seconds"])
    assert growth["sizes"]["3000"]["cache_mb"] > growth["sizes"]["100"]["cache_mb"]

    engines = result["engines"]
    assert engines["embedding"]["default"] == "int8" and engines["detector"]["default"] == "eager_fp32"
    for role, candidates, fidelity in (("embedding", EMBEDDING_CANDIDATES, "cosine_min"),
                                       ("detector", DETECTOR_CANDIDATES, "max_abs_delta_p")):
        figures = engines[role]["candidates"]
        assert list(figures) == [c.name for c in candidates]
        for name, entry in figures.items():  # every engine runs here (a C++ compiler for torch.compile, ONNX Runtime)
            assert "error" not in entry, (role, name, entry.get("error"))
            assert _rate(entry["img_s"]) and _rate(entry["speedup"]) and entry["rounds"] > 0, (role, name, entry)
            assert isinstance(entry["faithful"], bool) and fidelity in entry, (role, name, entry)
        # the fp32 engines compute what eager fp32 computes, in another order: the same embeddings, the
        # same P(AI) (and so the same decisions at any threshold)
        for name in ("torch_compile_fp32", "onnxruntime_fp32"):
            entry = figures[name]
            assert entry["faithful"] and (entry[fidelity] >= 0.999 if role == "embedding" else entry[fidelity] <= 1e-4), \
                (role, name, entry)
    for name in ("onnxruntime_dynamic_int8", "int8", "int8_compiled"):  # a cosine: within [-1, 1]
        assert -1.0 <= engines["embedding"]["candidates"][name]["cosine_min"] <= 1.0, name
    assert engines["embedding"]["candidates"]["int8"]["cosine_min"] >= 0.99  # the profile's engine stays faithful
    probe = engines["probe_fidelity"]
    assert set(probe["engines"]) == {"eager", "int8"} and probe["images"] == 64
    assert isinstance(probe["within_eager_interval"], bool)
    eager, int8 = (probe["engines"][e] for e in ("eager", "int8"))
    assert eager["n"] == int8["n"] > 0  # both probes scored the same test split
    for figures in (eager, int8):
        assert 0.0 <= figures["test_roc_auc"]["value"] <= 1.0 and 0.0 <= figures["test_pr_auc"]["value"] <= 1.0
    assert all(math.isfinite(s) and s >= 0 for s in probe["embedding_seconds"].values())  # rounded to 0.1 s

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
