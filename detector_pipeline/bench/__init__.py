"""The benchmark: stage throughput and memory (stages.py) and inference engines compared (engines.py)."""

from detector_pipeline.bench.stages import STAGES, BenchPlan, run_bench, sample_images

__all__ = ["STAGES", "BenchPlan", "run_bench", "sample_images"]
