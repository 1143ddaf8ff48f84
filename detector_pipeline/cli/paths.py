"""Where the CLI finds the data folder: the environment's, as the Dagster definitions see it."""

from pathlib import Path

from detector_pipeline.config.environment import read_environment


def data_dir() -> Path:
    return read_environment().data_dir
