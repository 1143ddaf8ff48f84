"""The promotion pointer under concurrent promotions: one after the other, the history a chain."""

import threading

from detector_pipeline.registry import pointer as registry


def test_promotions_at_once_queue_behind_each_other_and_the_history_stays_a_chain(tmp_path):
    versions = [f"v{i}" for i in range(8)]
    start = threading.Barrier(len(versions))

    def promote(version: str) -> None:
        start.wait()  # all at once
        registry.promote(tmp_path, {"version": version, "folder": f"models/detector/{version}", "threshold": 0.5})

    threads = [threading.Thread(target=promote, args=(v,)) for v in versions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    history = registry.promotion_history(tmp_path)
    assert sorted(r["version"] for r in history) == versions  # every promotion recorded, once
    assert [r["previous_version"] for r in history] == [None] + [r["version"] for r in history[:-1]]
    assert registry.read_promoted(tmp_path)["version"] == history[-1]["version"]
