"""Label batches as dynamic partitions of teacher_labels, and the pool the GPU steps share."""

import dagster as dg

label_batches = dg.DynamicPartitionsDefinition(name="label_batches")

GROUP = "training_chain"
GPU_POOL = "gpu"  # embedding, training and scoring steps share it: at most as many at once as GPUs
# On Kubernetes (k8s_job_executor), each GPU step's pod asks for one GPU.
GPU_STEP_TAGS = {"dagster-k8s/config": {"container_config": {"resources": {"limits": {"nvidia.com/gpu": "1"}}}}}

# One partition per file under data/verdicts/ (its name): the review page's per-reviewer files and
# files teams drop in from their own tools.
verdict_files = dg.DynamicPartitionsDefinition(name="verdict_files")
REVIEW_GROUP = "review"
