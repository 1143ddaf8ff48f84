"""The article's recipe (the `full` profile: DINOv2 ViT-B/14 embeddings, ConvNeXt-Tiny fine-tuned in
bf16) through the whole chain on a few tiny images, both backbones randomly initialised: no model hub
here, so this proves the code path users with the hub run, not its numbers. Training runs under bf16
autocast where the CPU runs bf16 natively; elsewhere emulated bf16 is far too slow for a test (a
ConvNeXt-Tiny step on 8 images took minutes on 2 AVX2 cores), and it runs in fp32."""

import numpy as np
import pytest
import torch

from detector_pipeline.config.device import cpu_runs_bf16_natively
from detector_pipeline.config.profiles import VIT_B_FEATURE_BLOCKS, get_profile
from detector_pipeline.data.splits import image_files, rows_in
from detector_pipeline.export.onnx_export import export_dir_for, export_onnx
from detector_pipeline.models.embeddings import embed_with_cache
from detector_pipeline.models.scorer import DetectorScorer
from detector_pipeline.registry.pointer import model_folder
from detector_pipeline.tasks.labels import prepare_labels
from detector_pipeline.tasks.models import detector_scorer, fit_probe, probe_scores_for, train_detector
from detector_pipeline_tests.helpers import write_tiny_dataset

pytestmark = pytest.mark.slow  # ViT-B/14 embeddings and a ConvNeXt-Tiny training step on the CPU


def test_full_profile_embeds_probes_trains_in_bf16_reloads_scores_and_exports(tmp_path):
    data = tmp_path / "data"
    labels = prepare_labels(write_tiny_dataset(data, n=16, side=72), data).accepted
    amp = "bf16" if cpu_runs_bf16_natively() else "fp32"
    profile = get_profile("full", data / "weights").with_random_weights().with_overrides(
        device="cpu", amp=amp, epochs=1, max_steps_per_epoch=1, embed_batch_size=8, train_batch_size=4,
        infer_batch_size=8, num_workers=0)
    assert profile.embedding.architecture == "vit_base_patch14_dinov2.lvd142m"
    assert profile.embedding.model_kwargs == {"img_size": 224}
    assert profile.detector.architecture == "convnext_tiny"

    embedding_set = embed_with_cache(profile.embedding, labels[["file", "sha256"]], data / "cache/embeddings",
                                     profile.embed_batch_size, torch.device("cpu"), amp=amp)
    assert embedding_set.randomly_initialised and "RANDOMLY INITIALISED" in embedding_set.description
    assert embedding_set.dim == 768 * len(VIT_B_FEATURE_BLOCKS)  # the class token of each chosen block

    probe_model = fit_probe(labels, embedding_set, data)
    assert probe_model.randomly_initialised and "RANDOMLY INITIALISED" in probe_model.backbone_description
    assert probe_model.selection["chosen_c"] in probe_model.selection["grid"]
    probe_p = probe_scores_for(probe_model, embedding_set, labels["sha256"], data)
    assert probe_p.shape == (len(labels),) and np.all((probe_p >= 0) & (probe_p <= 1))

    messages = []
    detector = train_detector(labels, data, profile, pos_weight=3.0, log=messages.append)
    assert detector.randomly_initialised and "RANDOMLY INITIALISED" in detector.backbone_description
    assert detector.settings["amp"] == amp and len(detector.history) == 1
    assert np.isfinite(detector.history[0]["train_loss"])
    folder = model_folder(data, detector.folder)

    reloaded = DetectorScorer.load(folder, "torch", torch.device("cpu"))  # files verified against the version
    assert reloaded.version == detector.version and reloaded.preprocessing.crop_size == 224
    scores = detector_scorer(folder, profile).score(image_files(labels))
    assert scores.shape == (len(labels),) and np.all(np.isfinite(scores))
    assert np.all((scores >= 0) & (scores <= 1))

    exported = export_onnx(folder, export_dir_for(folder), image_files(rows_in(labels, "test"))[:4])
    assert exported["passed"], exported
    print(f"full profile ({amp} training), {detector.backbone_description} and {embedding_set.description}: ONNX parity "
          f"max |delta P(AI)| {exported['max_abs_delta_p']:.1e} on {exported['n_parity_images']} images")
