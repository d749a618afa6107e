"""The CPU-safe parts of scripts/gpu_check.sh: its syntax, and the figures it writes into the performance doc."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def load():
    spec = importlib.util.spec_from_file_location("gpu_train", ROOT / "benchmarks" / "gpu_train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_script_parses():
    assert subprocess.run(["bash", "-n", str(ROOT / "scripts" / "gpu_check.sh")]).returncode == 0


def test_figures_skip_warmup_and_rows_replace_their_label(tmp_path):
    gpu_train = load()
    (tmp_path / "train").mkdir()
    rows = [{"tokens_per_s": 10.0 if i < 3 else 1000.0 + i, "samples_per_s": 2.0, "gpu_peak_gb": 3.0 + i / 10}
            for i in range(8)]
    (tmp_path / "train" / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    f = gpu_train.figures(tmp_path)
    assert f["tokens_per_s"] == 1005.0 and f["peak_gb"] == 3.7 and f["steps"] == 8
    doc = tmp_path / "performance.md"
    doc.write_text("# Performance\n\nintro\n")
    gpu_train.write_row(doc, "bf16 step, 1 process", "H100", f)
    gpu_train.write_row(doc, "bf16 step, 1 process", "H100", {**f, "tokens_per_s": 2000.0})
    gpu_train.write_row(doc, "ddp", "H100", f)
    text = doc.read_text()
    assert text.startswith("# Performance\n\nintro\n") and text.count("## GPU check: training") == 1
    assert "| bf16 step, 1 process | H100 | 2000 |" in text and "| 1005 |" in text and text.count("| bf16") == 1


def test_the_peak_is_set_against_the_plan_less_its_fixed_overhead(tmp_path):
    gpu_train = load()
    plan = tmp_path / "plan.json"
    gib = {"weights": 4.0, "gradients": 2.0, "optimiser": 4.0, "activations": 3.5, "loss_peak": 0.5,
           "overhead": 1.5, "total": 15.5}
    plan.write_text(json.dumps({"estimates": [{"text": "train memory: ...", "ok": True, "figures": {"gib": gib}}]}))
    assert gpu_train.planned_gib(plan) == 14.0
    doc = tmp_path / "performance.md"
    f = {"tokens_per_s": 900.0, "samples_per_s": 3.0, "peak_gb": 12.6, "steps": 25, "plan_gb": 14.0}
    gpu_train.write_row(doc, "fsdp", "H200", f)
    assert "| fsdp | H200 | 900 | 3.00 | 12.60 | 25 | 14.00 | 0.90 |" in doc.read_text()
