"""Fixtures shared by the test modules (plain helpers: helpers.py).

Two ways to run the suite (markers registered in pyproject.toml, [tool.pytest.ini_options]):
- all of it: `make test` (fetches the weights, the browser and PostgreSQL first);
- the fast suite: `make test-fast`, or `python -m pytest -q -m "not slow"`: under 3 minutes on 2 cores.
  It leaves out every test marked `slow`: Dagster runs of the pipeline, training for more than a few
  seconds, the browser, PostgreSQL, the fresh clone, `dg check`, the full profile, the benchmark, the
  real MobileNetV2's export, and statistics drawing thousands of bootstrap resamples.
A new test that takes more than a few seconds is marked `@pytest.mark.slow` (or `pytestmark` for a module)."""

import gc
import os

# No model hub here: fail at once instead of retrying for a minute (tests of the hub path expect failure).
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pathlib import Path

import pytest

from detector_pipeline_tests.helpers import settings_for, trained_on, write_tiny_dataset


@pytest.fixture(scope="session", autouse=True)
def frozen_import_heap():
    """What the imports and the collection made stays for the session: moved out of the collector's
    sight (gc.freeze), so that no_stale_dagster_instance's gc.collect() scans only what tests made since,
    in milliseconds instead of half a second per test."""
    gc.collect()
    gc.freeze()
    yield
    gc.unfreeze()


@pytest.fixture(autouse=True)
def no_stale_dagster_instance():
    """Dagster keeps process-wide pointers to the last instance's defs-state storage; a DagsterInstance
    that is garbage-collected late resets them to the instance made before it, which may be disposed
    by then ("Attempted to resolve undefined DagsterInstance weakref" in a later test). Collect the
    previous tests' instances first, then clear the pointers: each test starts from none."""
    from dagster._core.definitions.definitions_load_context import DefinitionsLoadContext
    from dagster._core.storage.defs_state.base import _current_storage

    gc.collect()
    DefinitionsLoadContext._instance = None
    _current_storage.set(None)
    yield


@pytest.fixture
def tiny_dataset(tmp_path: Path) -> Path:
    """The labels parquet of 64 generated images (helpers.write_tiny_dataset)."""
    return write_tiny_dataset(tmp_path / "data")


@pytest.fixture
def tiny_settings(tiny_dataset: Path, tmp_path: Path):
    """PipelineSettings: the tiny profile on tiny_dataset, everything written under tmp_path."""
    return settings_for(tiny_dataset, tmp_path)


@pytest.fixture
def trained(tiny_settings, tmp_path):
    """(settings, instance): an instance on disk that has trained and promoted on tiny_dataset."""
    yield from trained_on(tiny_settings, tmp_path)
