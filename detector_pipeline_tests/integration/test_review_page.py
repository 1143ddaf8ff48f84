"""The review page in headless Debian Chromium: a reviewer marks ten images of a batch's queue by
keyboard and mouse (one, a real picture the teacher scored 0.93, as real); the verdict file the page
wrote is picked up by the sensor, validated into reviewed_labels, and training_labels takes it."""

import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from playwright.sync_api import expect, sync_playwright

from detector_pipeline.data.batches import READY_MARKER
from detector_pipeline.defs.assets import ASSETS, BATCH_ASSETS, CHECKS
from detector_pipeline.defs.resources import pipeline_resources
from detector_pipeline.defs.schedules import retrain_tick, verdict_files_since_model
from detector_pipeline.defs.sensors import new_verdict_files
from detector_pipeline_tests.dagster_dev import free_port
from detector_pipeline_tests.helpers import write_tiny_dataset
from detector_pipeline_tests.integration.test_ui import CHROMIUM, CHROMIUM_ARGS

pytestmark = [pytest.mark.slow, pytest.mark.ui]
MARKED = 10


def _batch_with_a_teacher_mistake(settings, instance) -> str:
    """A new batch in which the teacher calls one real picture AI (0.93), validated and queued."""
    folder = Path(settings.incoming_dir) / "b1"
    labels = write_tiny_dataset(folder, n=48, seed=11, demo_columns=True)
    table = pd.read_parquet(labels)
    mistaken = table.index[~table["is_ai"]][0]
    table.loc[mistaken, "ai_score"] = 0.93
    table.to_parquet(labels, index=False)
    (folder / READY_MARKER).touch()
    instance.add_dynamic_partitions("label_batches", ["b1"])
    assert dg.materialize([*ASSETS, *CHECKS], selection=[a.key for a in BATCH_ASSETS], partition_key="b1",
                          resources=pipeline_resources(settings), instance=instance).success
    return table.loc[mistaken, "image_path"]


def _serve(settings, port: int, log: Path) -> subprocess.Popen:
    env = {**os.environ, "DETECTOR_DATA_DIR": str(settings.data)}
    command = [str(Path(sys.executable).parent / "detector-pipeline"), "review", "b1", "--serve", "--reviewer", "ana",
               "--port", str(port)]
    process = subprocess.Popen(command, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
            return process
        except OSError:
            assert process.poll() is None, log.read_text()
            time.sleep(0.5)
    raise TimeoutError(log.read_text())


def test_a_reviewer_marks_ten_images_and_the_next_training_labels_take_them(trained, tmp_path):
    settings, instance = trained
    mistaken = _batch_with_a_teacher_mistake(settings, instance)
    queue_file = next((settings.data / "production/b1").glob("*/review_queue.parquet"))
    queue = pd.read_parquet(queue_file)
    wanted = {int(r.rank): ("real" if not r.is_ai else "ai") for r in queue.head(MARKED).itertuples()}
    mistaken_rank = int(queue.loc[queue["image_path"] == mistaken, "rank"].iloc[0])
    assert mistaken_rank <= MARKED, "the teacher's mistake is among the largest disagreements"
    port = free_port()
    server = _serve(settings, port, tmp_path / "review.log")
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 900})
            page.goto(f"http://127.0.0.1:{port}/")
            expect(page.get_by_role("heading", name="Review queue of batch b1")).to_be_visible()
            expect(page.get_by_role("img").first).to_be_visible()
            assert page.evaluate("document.querySelector('img').naturalWidth") > 0  # the thumbnail is served
            for rank in range(1, MARKED):  # the keyboard: each key marks the current image and moves on
                if rank == mistaken_rank:
                    page.keyboard.press("n")  # a note first; Enter leaves the field
                    page.keyboard.type("real photo, teacher says 0.93")
                    page.keyboard.press("Enter")
                page.keyboard.press({"ai": "a", "real": "r"}[wanted[rank]])
                expect(page.get_by_role("status")).to_have_text(f"{rank} of {len(queue)} marked (saved)")
            card = page.get_by_role("region", name=f"image {MARKED}")  # the mouse, for the last one
            card.get_by_role("button", name={"ai": "AI (a)", "real": "Real (r)"}[wanted[MARKED]]).click()
            expect(page.get_by_role("status")).to_have_text(f"{MARKED} of {len(queue)} marked (saved)")
            page.screenshot(path=str(tmp_path / "review_page.png"), full_page=False)
            if os.environ.get("DETECTOR_SCREENSHOTS"):
                shutil.copy(tmp_path / "review_page.png", os.environ["DETECTOR_SCREENSHOTS"])
            page.reload()  # what was saved shows again
            expect(page.get_by_role("status")).to_have_text(f"{MARKED} of {len(queue)} marked")
            browser.close()
    finally:
        os.killpg(server.pid, signal.SIGINT)
        server.wait(30)

    written = pd.read_parquet(settings.data / "verdicts/review-ana.parquet")
    assert len(written) == MARKED and set(written["reviewer"]) == {"ana"}
    ranks = dict(zip(queue["sha256"], queue["rank"]))
    assert {int(ranks[h]): v for h, v in zip(written["sha256"], written["verdict"])} == wanted
    assert written.loc[written["verdict"] == "real", "note"].str.contains("teacher says 0.93").sum() == 1

    # The sensor sees the reviewer's file, once per content; its run validates it. A file that is no
    # verdict file at all is skipped, and the others go on.
    (settings.data / "verdicts/broken.csv").write_text("image_path,score\nx.png,1\n")
    context = dg.build_sensor_context(instance=instance, resources={"settings": settings})
    tick = new_verdict_files(context)
    [request] = tick.run_requests
    assert request.partition_key == "review-ana.parquet" and request.job_name == "validate_verdicts"
    assert tick.dynamic_partitions_requests[0].partition_keys == ["review-ana.parquet"]
    # A file registered whose validation has not run yet is left out of training, not fatal to it.
    instance.add_dynamic_partitions("verdict_files", ["review-ana.parquet", "not-yet.csv"])
    reviewed = dg.materialize([*ASSETS, *CHECKS], selection=["reviewed_labels"], partition_key="review-ana.parquet",
                              resources=pipeline_resources(settings), instance=instance)
    assert len(reviewed.output_for_node("reviewed_labels")) == MARKED
    # The nightly schedule retrains for verdicts the last model has not seen.
    assert verdict_files_since_model(instance) == ["review-ana.parquet"]
    tick = retrain_tick(dg.build_schedule_context(instance=instance, resources={"settings": settings}))
    assert isinstance(tick, dg.RunRequest)
    assert "verdicts validated since the last model ['review-ana.parquet']" in tick.tags["retrain_reason"]
    labels = dg.materialize([*ASSETS, *CHECKS], selection=["training_labels"], resources=pipeline_resources(settings),
                            instance=instance).output_for_node("training_labels")
    overridden = labels[labels["overridden"]]
    assert len(overridden) == MARKED
    row = overridden[overridden["file"].str.endswith("incoming/b1/" + mistaken)].iloc[0]
    assert (row["teacher_score"], row["ai_score"], row["label"], row["verdict"]) == (0.93, 0.0, 0, "real")
