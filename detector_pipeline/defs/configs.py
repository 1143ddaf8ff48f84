"""Run-time knobs for the assets, editable in the launchpad. Unset fields take the profile's value."""

import dagster as dg

from detector_pipeline.config.profiles import Profile


class EmbeddingChunksConfig(dg.Config):
    chunks: int = 1  # the new images are embedded in this many parallel steps


class EmbedChunkConfig(dg.Config):
    batch_size: int | None = None
    threads: int | None = None  # torch threads per step; with several steps on one machine, cores / steps


class DetectorConfig(dg.Config):
    epochs: int | None = None
    batch_size: int | None = None
    max_steps_per_epoch: int | None = None
    use_pos_weight: bool = True
    native_crops: bool = True
    processes: int = 1  # >1: DistributedDataParallel over this many processes (GPUs) under torchrun, via Pipes

    def applied_to(self, profile: Profile) -> Profile:
        """The profile with this run's overrides: the one place where the two are merged."""
        return profile.with_overrides(epochs=self.epochs, train_batch_size=self.batch_size,
                                      max_steps_per_epoch=self.max_steps_per_epoch)


class SplitConfig(dg.Config):
    """The split's seed is the settings' one seed (PipelineSettings.seed)."""

    val_fraction: float = 0.15
    test_fraction: float = 0.15


class FeedConfig(dg.Config):
    feed_dir: str | None = None  # default: the settings' feed_dir (data/feed)
