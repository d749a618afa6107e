#!/usr/bin/env bash
# Checks to run when a GPU machine is at hand. Each section prints its figures; the whole script takes a few
# minutes on one H100 (no downloads: random-weight models built from configs, embedded-world data).
#   bash scripts/gpu_check.sh            # figures printed, and written to docs/performance.md
#   DOC= bash scripts/gpu_check.sh       # figures printed only
# On a bare, offline machine with torch, transformers, accelerate and peft but not afcot's other needs, carry
# the wheels made by `bash scripts/gpu_wheels.sh` (.whl/, a few MB) with the checkout: they and afcot itself are
# installed into a folder of their own first.
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
if ! python3 -c "import afcot_core, msgspec, structlog, soundfile, soxr, webdataset, tomli_w" 2>/dev/null; then
  SITE=${SITE:-/tmp/afcot-site}
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl
  python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-cache-dir --target "$SITE" .
  export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
WORK=${WORK:-$(mktemp -d -t afcot-gpu-XXXX)}
DOC=${DOC-docs/performance.md}
section() { printf '\n== %s\n' "$1"; }
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true

# --- training -------------------------------------------------------------------------------------------------
section "training: data (200 embedded-world items) and a mid-size random AF3 (bf16 autocast, AdamW)"
python -m afcot_core.cli recipe run recipes/quickstart.toml --out "$WORK/data" --stages generate --quiet \
  --set generate.source.items=200 > /dev/null
python benchmarks/gpu_train.py prepare "$WORK/mid"
cat > "$WORK/train.toml" <<TOML
[run]
name = "gpu-check"
stages = ["train"]
[train]
use = "af3"
model = "$WORK/mid"
data = "$WORK/data/generate"
device = "cuda"
dtype = "bfloat16"
learning_rate = 1e-4
schedule = "constant"
warmup_ratio = 0.0
global_batch = 8
per_device_batch = 8
max_steps = 25
num_workers = 4
checkpoint_every = 0
plot = false
TOML

section "training: bf16 step, one process (ddp: a full copy)"
python -m afcot_core.cli recipe run "$WORK/train.toml" --out "$WORK/one" --quiet > /dev/null
python -m afcot_core.cli recipe plan "$WORK/train.toml" --stages train --json > "$WORK/one.plan.json"
python benchmarks/gpu_train.py report "$WORK/one" "bf16 step, ddp, 1 process" --plan "$WORK/one.plan.json" \
  ${DOC:+--doc "$DOC"}

section "training: bf16 step under a 1-GPU NCCL launch (torchrun), fsdp with activation checkpointing"
FSDP=(--set 'train.strategy="fsdp"' --set train.activation_checkpointing=true)
torchrun --standalone --nproc_per_node 1 -m afcot_core.cli recipe run "$WORK/train.toml" --out "$WORK/fsdp" \
  --quiet "${FSDP[@]}" > /dev/null
python -m afcot_core.cli recipe plan "$WORK/train.toml" --stages train --json "${FSDP[@]}" > "$WORK/fsdp.plan.json"
python benchmarks/gpu_train.py report "$WORK/fsdp" "bf16 step, fsdp + checkpointing, torchrun 1 GPU (NCCL)" \
  --plan "$WORK/fsdp.plan.json" ${DOC:+--doc "$DOC"}

section "training: data loader vs step on the tiny model (ratio above 1: the step never waits)"
python benchmarks/train_throughput.py --data "$WORK/data/generate" | tail -3

# --- teachers ---------------------------------------------------------------------------------------------------
section "teacher: the transformers backend's batched requests/s (mid-size random Qwen3, greedy)"
python scripts/teacher_throughput.py --requests 128 --tokens 64

# --- further sections (serving, ...) add themselves below, each printing its figures ---------------------------
