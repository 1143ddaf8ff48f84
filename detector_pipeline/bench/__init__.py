"""The benchmark: what a run measures (plan.py), how it measures (measure.py), stage throughput and
memory (stages.py), inference engines compared (engines.py, comparisons.py), JPEG decoding (decode.py),
the content-hash cache's growth (cache_growth.py).

The names below load on first use, so a stage's fresh process that needs none of them (the cache's)
imports no torch."""

__all__ = ["STAGES", "BenchPlan", "run_bench", "sample_images"]


def __getattr__(name: str):
    if name in __all__:
        from detector_pipeline.bench import stages

        return getattr(stages, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
