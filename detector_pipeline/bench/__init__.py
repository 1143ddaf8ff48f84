"""The benchmark: what a run measures (plan.py), how it measures (measure.py), stage throughput and
memory (stages.py), inference engines compared (engines.py, comparisons.py), JPEG decoding (decode.py)."""

from detector_pipeline.bench.stages import STAGES, BenchPlan, run_bench, sample_images

__all__ = ["STAGES", "BenchPlan", "run_bench", "sample_images"]
