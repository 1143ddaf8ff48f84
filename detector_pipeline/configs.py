"""Run-time knobs for the assets, editable in the launchpad. Unset fields take the profile's value."""

import dagster as dg


class EmbeddingsConfig(dg.Config):
    batch_size: int | None = None


class DetectorConfig(dg.Config):
    epochs: int | None = None
    batch_size: int | None = None
    max_steps_per_epoch: int | None = None
    seed: int | None = None
    use_pos_weight: bool = True
    native_crops: bool = True


class SplitConfig(dg.Config):
    seed: int = 0
    val_fraction: float = 0.15
    test_fraction: float = 0.15


class FeedConfig(dg.Config):
    feed_dir: str | None = None  # default: the settings' feed_dir (data/feed)
