"""The real Dagster UI on 127.0.0.1, driven by headless Debian Chromium: materialize the chain from it."""

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect, sync_playwright

from detector_pipeline_tests import dagster_dev
from detector_pipeline_tests.helpers import write_tiny_dataset

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.fixture
def dagster_ui(tmp_path):
    labels = write_tiny_dataset(tmp_path / "data")
    home = tmp_path / "dagster_home"
    home.mkdir()
    env = {**os.environ, "DAGSTER_HOME": str(home), "DETECTOR_PROFILE": "tiny", "DETECTOR_LABELS": str(labels),
           "DETECTOR_IMAGES_ROOT": str(labels.parent), "DETECTOR_DATA_DIR": str(tmp_path / "artifacts"),
           "DETECTOR_DEVICE": "cpu", "DETECTOR_FEED_DIR": str(labels.parent / "img"),
           "DETECTOR_INCOMING_DIR": str(tmp_path / "incoming")}
    subprocess.run([str(Path(sys.executable).parent / "detector-pipeline"), "init"], env=env, check=True)
    process, url = dagster_dev.start(env, tmp_path / "dagster_dev.log")
    try:
        yield url, home
    finally:
        dagster_dev.stop(process)


def _wait_for_materialization(home: Path, key: str, timeout: float = 420) -> None:
    def materialized(instance) -> bool:
        failed = [r for r in instance.get_runs() if r.status == dg.DagsterRunStatus.FAILURE]
        assert not failed, f"run {failed[0].run_id} failed"
        return instance.get_latest_materialization_event(dg.AssetKey(key)) is not None

    dagster_dev.wait_until(home, materialized, timeout, f"{key} not materialized")


def _wait_for_runs_to_end(home: Path, timeout: float = 300) -> list[dg.DagsterRun]:
    """A run's last steps (and its RUN_SUCCESS event) can come after the asset the test waited for."""
    def finished_runs(instance) -> list[dg.DagsterRun] | None:
        runs = instance.get_runs()
        return runs if runs and all(r.is_finished for r in runs) else None

    return dagster_dev.wait_until(home, finished_runs, timeout, "runs still in progress")


@pytest.mark.slow  # starts dagster dev and Chromium, then runs the chain
@pytest.mark.ui
def test_materialize_the_chain_from_the_ui(dagster_ui):
    url, home = dagster_ui
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(f"{url}/locations/detector_pipeline/asset-groups/training_chain", wait_until="domcontentloaded")
        skip = page.get_by_role("button", name="Skip")  # the first-visit "join the community" dialog
        try:
            skip.click(timeout=20_000)
        except PlaywrightTimeout:
            pass
        page.get_by_role("button", name="Materialize all").click(timeout=90_000)
        dialog = page.get_by_role("dialog")
        # On a new instance nobody has reviewed anything: the UI asks whether to go on without
        # reviewed_labels (training_labels then takes no verdicts), and a person confirms.
        try:
            expect(dialog.get_by_text("reviewed_labels", exact=True)).to_be_visible(timeout=15_000)
            dialog.get_by_role("button", name="Confirm").click()
        except (AssertionError, PlaywrightTimeout):
            pass
        expect(dialog.get_by_text(re.compile(r"Launch runs to materialize \d+ assets"))).to_be_visible(timeout=30_000)
        dialog.get_by_role("button", name="All", exact=True).click()
        expect(dialog.get_by_text("1 partition", exact=True)).to_be_visible(timeout=10_000)
        dialog.get_by_role("button", name=re.compile(r"^Launch (1 run|backfill)")).click()

        _wait_for_materialization(home, "promoted_detector")

        page.goto(f"{url}/assets/evaluation_report", wait_until="domcontentloaded")
        expect(page.get_by_text("detector_test_in_distribution_roc_auc").first).to_be_visible(timeout=60_000)
        page.screenshot(path=str(home / "evaluation_report.png"), full_page=True)
        _figures_read_well(page)
        page.goto(f"{url}/assets/detector", wait_until="domcontentloaded")
        expect(page.get_by_text("best_val_roc_auc").first).to_be_visible(timeout=60_000)
        _figures_read_well(page)
        history = page.get_by_role("row", name=re.compile(r"^history "))
        history.get_by_text("[Show Markdown]").click()  # markdown metadata opens in a dialog
        expect(page.get_by_role("dialog").get_by_role("img", name="training history")).to_be_visible(timeout=30_000)
        browser.close()
    runs = _wait_for_runs_to_end(home)
    assert [r.status for r in runs] == [dg.DagsterRunStatus.SUCCESS] * len(runs)
    with dagster_dev.instance_at(home) as instance:
        for key in ("teacher_labels", "offtheshelf_baseline", "evaluation_report", "promoted_detector"):
            assert instance.get_latest_materialization_event(dg.AssetKey(key)) is not None


def _figures_read_well(page) -> None:
    """What a person reads on an asset's page: figures rounded to what they mean, no JSON nulls, and
    every "n/a" with its reason beside it."""
    text = page.locator("body").inner_text()
    assert not re.search(r"\d\.\d{6,}", text), re.findall(r"\S*\d\.\d{6,}\S*", text)[:5]
    assert "null" not in text
    assert all(line.strip() != "n/a" for line in text.splitlines())
