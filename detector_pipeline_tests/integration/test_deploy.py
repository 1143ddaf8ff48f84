"""The cluster files, checked as far as a machine without Kubernetes allows: the definitions load with
the k8s executor, the GPU steps' pod settings are valid dagster-k8s config, the files parse and point
at things that exist."""

import importlib
import json
import re
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster_k8s import k8s_job_executor
from dagster_k8s.job import UserDefinedDagsterK8sConfig

from detector_pipeline.defs import partitions
from detector_pipeline.defs.assets import ASSETS, CHECKS
from detector_pipeline.defs.resources import PipelineSettings, pipeline_resources
from detector_pipeline_tests.helpers import PROJECT_ROOT

DEPLOY = PROJECT_ROOT / "deploy"


def test_definitions_load_with_the_k8s_executor(monkeypatch):
    from detector_pipeline import definitions

    monkeypatch.setenv("DETECTOR_EXECUTOR", "k8s")
    try:
        module = importlib.reload(definitions)
        repository = module.defs.get_repository_def()
        assert module.defs.executor is k8s_job_executor
        for name in ("retrain_on_batch", "retrain", "score_feed", "ablations", "report"):
            assert repository.get_job(name).executor_def is k8s_job_executor
    finally:
        monkeypatch.delenv("DETECTOR_EXECUTOR")
        importlib.reload(definitions)


@pytest.mark.parametrize("cores, expected", [(2, dg.in_process_executor), (16, dg.multiprocess_executor)])
def test_the_default_executor_follows_the_machine(monkeypatch, cores, expected):
    from detector_pipeline import definitions
    from detector_pipeline.config import environment

    monkeypatch.setattr(environment.os, "cpu_count", lambda: cores)
    assert definitions.executor(environment.read_environment({}).executor) is expected
    chosen = environment.read_environment({"DETECTOR_EXECUTOR": "multiprocess"}).executor
    assert definitions.executor(chosen) is dg.multiprocess_executor


def test_gpu_steps_ask_for_a_gpu_in_valid_k8s_config():
    config = UserDefinedDagsterK8sConfig.from_dict(partitions.GPU_STEP_TAGS["dagster-k8s/config"])
    assert config.container_config["resources"]["limits"]["nvidia.com/gpu"] == "1"
    repository = dg.Definitions(assets=ASSETS, asset_checks=CHECKS,
                                resources=pipeline_resources(PipelineSettings())).get_repository_def()
    job = repository.get_implicit_global_asset_job_def()
    gpu_ops = [op for op in job.graph.iterate_op_defs() if op.pool == partitions.GPU_POOL]
    assert {"embed_chunk", "detector", "feed_scores", "batch_evaluation", "ablation_study", "shadow_comparison"} == {
        op.name for op in gpu_ops}
    for op in gpu_ops:
        tag = op.tags["dagster-k8s/config"]  # Dagster keeps non-string tag values as JSON
        assert (json.loads(tag) if isinstance(tag, str) else tag) == partitions.GPU_STEP_TAGS["dagster-k8s/config"]


def test_helm_values_parse_and_use_the_k8s_run_launcher_and_the_image_module():
    values = yaml.safe_load((DEPLOY / "k8s/values.yaml").read_text())
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    deployment = values["dagster-user-deployments"]["deployments"][0]
    assert deployment["dagsterApiGrpcArgs"] == ["-m", "detector_pipeline.definitions"]
    limits = values["dagsterDaemon"]["runCoordinator"]["config"]["queuedRunCoordinator"]["tagConcurrencyLimits"]
    assert {"key": "detector_pipeline/retrain", "limit": 1} in limits


@pytest.mark.parametrize("instance_file", ["dagster.yaml", "dagster.local.yaml"])
def test_every_instance_queues_runs_with_one_retrain_at_a_time(instance_file):
    """The shared instance and the one `make ui` / `make demo` create hold the same run-queue limits."""
    settings = yaml.safe_load((DEPLOY / instance_file).read_text())
    assert settings["run_coordinator"]["class"] == "QueuedRunCoordinator"
    limits = settings["concurrency"]["runs"]["tag_concurrency_limits"]
    assert {"key": "detector_pipeline/retrain", "limit": 1} in limits
    assert {"key": "detector_pipeline/validate", "limit": 2} in limits
    assert settings["concurrency"]["pools"]["default_limit"] == 1


def test_dockerfile_copies_what_exists_and_serves_the_definitions():
    text = (DEPLOY / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11", text, re.M)
    for sources in re.findall(r"^COPY (.+) \S+$", text, re.M):
        for source in sources.split():
            assert (PROJECT_ROOT / source).exists(), source
    assert '"-m", "detector_pipeline.definitions"' in text
    from detector_pipeline.definitions import defs  # what the image's code server serves

    jobs = {job.name for job in defs.get_repository_def().get_all_jobs()}
    assert {"validate_batch", "retrain_on_batch", "retrain", "score_feed", "ablations", "report"} <= jobs
    assert {s.name for s in defs.sensors} == {"new_label_batches", "new_verdict_files", "runs_whose_worker_died"}
    assert {s.name for s in defs.schedules} == {"nightly_retrain"}


@pytest.mark.slow  # two `dg` processes, each loading every definition
def test_dg_checks_and_lists_the_definitions():
    """`dg check defs` and `dg list defs` from the repository root, as a developer runs them."""
    dg_cli = Path(sys.executable).parent / "dg"
    for command in (["check", "defs"], ["list", "defs", "--json"]):
        done = subprocess.run([str(dg_cli), *command], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
    assert "promoted_detector" in done.stdout and "new_label_batches" in done.stdout
