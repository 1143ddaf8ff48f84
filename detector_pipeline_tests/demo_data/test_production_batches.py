import pandas as pd

from detector_pipeline.data.batches import LABELS_FILE, batch_problem
from detector_pipeline.demo_data import production_batches as pb
from detector_pipeline_tests.helpers import PROJECT_ROOT

DEMO = PROJECT_ROOT / "data/demo"


def test_the_rehearsal_keeps_the_new_generators_out_of_the_base_and_no_scene_in_two_places(tmp_path):
    made = pb.write_production_demo(DEMO / "labels.parquet", DEMO, tmp_path)
    base = pd.read_parquet(made.base_labels)
    batches = {name: pd.read_parquet(folder / LABELS_FILE) for name, folder in made.batches.items()}
    tables = {"base": base, **batches}
    groups = {name: set(t["source_group"]) for name, t in tables.items()}
    assert not groups["base"] & groups[pb.SEEN_BATCH] and not groups["base"] & groups[pb.UNSEEN_BATCH]
    assert not groups[pb.SEEN_BATCH] & groups[pb.UNSEEN_BATCH]
    for name in ("base", pb.SEEN_BATCH):
        assert set(tables[name]["family"]) <= set(pb.KNOWN_FAMILIES), name
    new = batches[pb.UNSEEN_BATCH]
    assert {"real_esrgan", "realsr", "real_cugan", "waifu2x"} <= set(new["family"]) and (new["family"] == "real").any()
    assert base["source_held_out"].any()  # the base keeps its test of real photographs of an unseen kind
    for name, folder in made.batches.items():
        assert batch_problem(folder) is None
        assert all((folder / p).is_file() for p in batches[name]["image_path"])
