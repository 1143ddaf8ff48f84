"""The benchmark on tiny models: every figure bench.json promises is there and consistent. Speeds are
reported, never asserted."""

from detector_pipeline import bench
from detector_pipeline.config.profiles import get_profile


def test_bench_reports_every_stage_incremental_cost_and_memory(tiny_dataset, tmp_path):
    profile = get_profile("tiny", tmp_path / "no-weights")
    paths = tuple(bench.sample_images(tiny_dataset, tiny_dataset.parent, 20))
    plan = bench.BenchPlan(profile, paths, device="cpu", model_only_batches=2, warmup_batches=1, scoring_repeats=2,
                           training_epochs=2, memory_images=4, memory_factor=3)
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


def test_sample_images_is_deterministic_and_caps_at_the_table_size(tiny_dataset):
    assert len(set(bench.sample_images(tiny_dataset, tiny_dataset.parent, 1000))) == 64
    ten = bench.sample_images(tiny_dataset, tiny_dataset.parent, 10)
    assert len(ten) == 10 and ten == bench.sample_images(tiny_dataset, tiny_dataset.parent, 10)
    assert ten != sorted(ten)  # a random mix, not the first rows
