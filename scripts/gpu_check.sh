#!/usr/bin/env bash
# Checks to run when a GPU machine is at hand. Each section prints its figures; the whole script takes a few
# minutes on one H100 (no downloads: random-weight models built from configs, embedded-world data).
#   bash scripts/gpu_check.sh            # figures printed, and written to docs/performance.md
#   DOC= bash scripts/gpu_check.sh       # figures printed only
set -euo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
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

section "training: bf16 step, one process"
python -m afcot_core.cli recipe run "$WORK/train.toml" --out "$WORK/one" --quiet > /dev/null
python benchmarks/gpu_train.py report "$WORK/one" "bf16 step, 1 process" ${DOC:+--doc "$DOC"}

section "training: bf16 step under a 1-GPU NCCL DDP launch (torchrun)"
torchrun --standalone --nproc_per_node 1 -m afcot_core.cli recipe run "$WORK/train.toml" --out "$WORK/ddp" \
  --quiet > /dev/null
python benchmarks/gpu_train.py report "$WORK/ddp" "bf16 step, torchrun 1 GPU (NCCL)" ${DOC:+--doc "$DOC"}

section "training: data loader vs step on the tiny model (ratio above 1: the step never waits)"
python benchmarks/train_throughput.py --data "$WORK/data/generate" | tail -3

# --- further sections (serving, ...) add themselves below, each printing its figures ---------------------------
