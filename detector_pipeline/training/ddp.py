"""Multi-GPU fine-tuning: the detector's own training loop, one process per GPU under torchrun
(DistributedDataParallel; gloo on CPUs, NCCL on GPUs).

    torchrun --standalone --nproc_per_node N -m detector_pipeline.training.ddp JOB.json

JOB.json (written by `launch_command`'s caller) holds the backbone, settings, image lists and the
folder where rank 0 writes the chosen weights and its training record. Started by Dagster through
Pipes, rank 0 sends its log lines to the run; no Dagster is imported here, only dagster-pipes.
"""

import contextlib
import json
import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from safetensors.torch import save_file

from detector_pipeline.models.backbones import BackboneSpec
from detector_pipeline.training.loop import train_detector
from detector_pipeline.training.settings import TrainSettings

STATE_FILE, RECORD_FILE = "model.safetensors", "record.json"


def launch_command(job_file: Path, processes: int) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={processes}",
            "-m", "detector_pipeline.training.ddp", str(job_file)]


def write_job(folder: Path, spec: BackboneSpec, settings: TrainSettings, train_paths, train_scores,
              val_paths, val_labels, checkpoint_dir: Path | None, restart_copies: Path | None = None) -> Path:
    job = {"spec": spec.as_dict(), "settings": settings.__dict__, "out": str(folder),
           "train_paths": [str(p) for p in train_paths], "train_scores": [float(s) for s in train_scores],
           "val_paths": [str(p) for p in val_paths], "val_labels": [int(v) for v in val_labels],
           "checkpoint_dir": None if checkpoint_dir is None else str(checkpoint_dir),
           "restart_copies": None if restart_copies is None else str(restart_copies)}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "job.json").write_text(json.dumps(job))
    return folder / "job.json"


@contextlib.contextmanager
def _pipes_log(rank: int):
    """Rank 0's log goes to Dagster when Dagster started the job (Pipes), else to stdout."""
    if rank == 0:
        from dagster_pipes import PipesEnvVarParamsLoader, open_dagster_pipes

        if PipesEnvVarParamsLoader().is_dagster_pipes_process():
            with open_dagster_pipes() as pipes:
                yield pipes.log.info
                return
    yield (lambda line: print(line, flush=True)) if rank == 0 else (lambda line: None)


def _parameter_digest(model_state: dict[str, torch.Tensor]) -> float:
    return float(sum(v.double().sum() for v in model_state.values() if v.is_floating_point()))


def main(job_file: str) -> None:
    job = json.loads(Path(job_file).read_text())
    cuda = torch.cuda.is_available()
    dist.init_process_group("nccl" if cuda else "gloo")
    rank, local_rank = dist.get_rank(), int(os.environ.get("LOCAL_RANK", 0))
    device = torch.device("cuda", local_rank) if cuda else torch.device("cpu")
    if cuda:
        torch.cuda.set_device(device)
    out = Path(job["out"])
    try:
        with _pipes_log(rank) as log:
            log(f"rank {rank} of {dist.get_world_size()} on {device}")
            result = train_detector(
                BackboneSpec(**job["spec"]), [Path(p) for p in job["train_paths"]], job["train_scores"],
                [Path(p) for p in job["val_paths"]], job["val_labels"], TrainSettings(**job["settings"]), device,
                checkpoint_dir=Path(job["checkpoint_dir"]) if job["checkpoint_dir"] else None, log=log,
                restart_copies=Path(job["restart_copies"]) if job.get("restart_copies") else None,
            )
            # Every rank records a digest of its final weights: DDP keeps the replicas identical.
            digest = _parameter_digest(result.final_state)
            (out / f"rank{rank}.json").write_text(json.dumps({"final_weights_digest": digest}))
            if rank == 0:
                save_file({k: v.contiguous() for k, v in result.state.items()}, str(out / STATE_FILE))
                (out / RECORD_FILE).write_text(json.dumps({
                    "best_epoch": result.best_epoch, "best_val_roc_auc": result.best_val_roc_auc,
                    "history": result.history, "resumed_from_epoch": result.resumed_from_epoch,
                    "world_size": dist.get_world_size()}))
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1])
