"""The real Dagster UI on 127.0.0.1, driven by headless Debian Chromium: materialize the chain from it."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dagster as dg
import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import expect, sync_playwright

from detector_pipeline_tests.conftest import PROJECT_ROOT, write_tiny_dataset

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_up(url: str, process: subprocess.Popen, timeout: float = 180) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"dagster dev exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url + "/server_info", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise TimeoutError(f"the Dagster UI did not come up on {url}")


@pytest.fixture
def dagster_ui(tmp_path):
    labels = write_tiny_dataset(tmp_path / "data", n=32)
    home = tmp_path / "dagster_home"
    home.mkdir()
    port = _free_port()
    env = {**os.environ, "DAGSTER_HOME": str(home), "DETECTOR_PROFILE": "tiny", "DETECTOR_LABELS": str(labels),
           "DETECTOR_IMAGES_ROOT": str(labels.parent), "DETECTOR_DATA_DIR": str(tmp_path / "artifacts"),
           "DETECTOR_DEVICE": "cpu"}
    dagster = Path(sys.executable).parent / "dagster"
    log = open(tmp_path / "dagster_dev.log", "w")
    # Its own session and process group: signals reach dagster dev and all its children, and SIGINT
    # is not ignored as it is for a job started with `&` by a non-interactive shell.
    process = subprocess.Popen([str(dagster), "dev", "-w", str(PROJECT_ROOT / "workspace.yaml"), "-h", "127.0.0.1",
                                "-p", str(port)], cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                               start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(url, process)
        yield url, home
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()


@pytest.mark.ui
def test_materialize_the_chain_from_the_ui(dagster_ui):
    url, home = dagster_ui
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.goto(f"{url}/asset-groups", wait_until="domcontentloaded")
        skip = page.get_by_role("button", name="Skip")  # the first-visit "join the community" dialog
        try:
            skip.click(timeout=20_000)
        except PlaywrightTimeout:
            pass
        button = page.get_by_role("button", name="Materialize all")
        expect(button).to_be_visible(timeout=90_000)
        expect(page.get_by_text("evaluation_report").first).to_be_visible(timeout=30_000)
        page.screenshot(path=str(home / "graph.png"))
        button.click()
        page.get_by_role("link", name="View").first.click(timeout=60_000)
        expect(page.get_by_text("Success").first).to_be_visible(timeout=240_000)
        page.screenshot(path=str(home / "run.png"))
        browser.close()
    with dg.DagsterInstance.from_ref(dg.InstanceRef.from_dir(str(home))) as instance:
        runs = instance.get_runs()
        assert len(runs) == 1 and runs[0].status == dg.DagsterRunStatus.SUCCESS
        assert instance.get_latest_materialization_event(dg.AssetKey("evaluation_report")) is not None
