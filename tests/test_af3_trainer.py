"""The AF3 student on the shared training loop: label mask, checkpoints and resume, DDP, LoRA, the quickstart."""

from __future__ import annotations

import itertools
import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest
from afcot_flamingo.af3 import Af3Student, Af3Trainer
from afcot_flamingo.config import Af3TrainConfig
from afcot_flamingo.training.student import IGNORE, Example

from afcot_core.errors import BadInput

from .conftest import QUICKSTART
from .student_data import write_shards

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def tones(tmp_path_factory):
    return write_shards(tmp_path_factory.mktemp("tones") / "generate", 16, per_shard=5)


class Log:
    """Collects log events; with ``kill_at`` the process SIGKILLs itself right after logging that training step."""

    def __init__(self, kill_at: int | None = None) -> None:
        self.events, self.kill_at = [], kill_at

    def info(self, event, **kw):
        self.events.append({"event": event, **kw})
        if event == "train step" and kw["step"] == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)

    warning = info


def config(af3_folder, tones, **kw):
    base = dict(model=str(af3_folder), data=str(tones), device="cpu", dtype="float32", learning_rate=3e-3,
                schedule="cosine", warmup_ratio=0.2, global_batch=4, per_device_batch=2, max_steps=6, num_workers=2,
                shuffle_buffer=8, checkpoint_every=2, plot=True, cpu_threads=1)
    return Af3TrainConfig(**{**base, **kw})


def test_labels_cover_exactly_the_assistant_turns(af3_folder):
    student = Af3Student(config(af3_folder, None))
    student.build(student.config, af3_folder, "cpu", torch.float32)
    tok = student.processor.tokenizer
    wave = np.zeros(16000, dtype=np.float32)
    n = len(tok.encode("<|im_start|>assistant\n", add_special_tokens=False))
    for turns in [(("Is it loud? (A) yes. (B) no.", "<SUMMARY> s </SUMMARY> (A) yes"),),
                  (("What is it?", "A dog."), ("Is it loud?", "Yes, loud."))]:
        enc = student.encode(Example(wave, turns, "test"))
        ids, labels = enc["input_ids"], enc["labels"]
        kept = (labels != IGNORE).nonzero().flatten().tolist()
        assert (labels[kept] == ids[kept]).all()
        assert tok.decode(labels[kept]) == "".join(f"{a}<|im_end|>" for _, a in turns)
        starts = [kept[0]] + [b for a, b in itertools.pairwise(kept) if b != a + 1]
        spans = [tok.decode(ids[s - n: s]) for s in starts]
        assert spans == ["<|im_start|>assistant\n"] * len(turns)  # each labelled run starts right after a header
        assert (labels[ids == tok.convert_tokens_to_ids("<sound>")] == IGNORE).all()
    batch = student.collate([student.encode(Example(wave, t, "x")) for t in ((("q", "a"),), (("qq", "long a"),))])
    assert batch["input_ids"].shape == batch["labels"].shape and batch["input_features"].shape[0] == 2
    assert student.model(**batch).loss.isfinite()


def losses(out):
    return [json.loads(line)["loss"] for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_killed_training_resumes_with_the_same_loss_sequence(af3_folder, tones, tmp_path):
    from transformers import AudioFlamingo3ForConditionalGeneration

    c = config(af3_folder, tones)
    whole = Af3Trainer(c).train(tones, tmp_path / "whole", Log())
    assert whole["steps"] == 6 and whole["last_loss"] < whole["first_loss"]
    child = multiprocessing.get_context("fork").Process(  # killed (SIGKILL) after step 5; step 4 was saved
        target=Af3Trainer(c).train, args=(tones, tmp_path / "cut", Log(kill_at=5)))
    child.start()
    child.join(180)
    assert child.exitcode == -signal.SIGKILL
    assert not (tmp_path / "cut" / "final").exists()
    log = Log()
    resumed = Af3Trainer(c).train(tones, tmp_path / "cut", log)
    assert [e["step"] for e in log.events if e["event"] == "resuming training"] == [4]
    assert np.allclose(losses(tmp_path / "cut"), losses(tmp_path / "whole"), rtol=1e-5)
    assert resumed["steps"] == 6 and len(losses(tmp_path / "cut")) == 6
    metrics = json.loads((tmp_path / "whole" / "metrics.jsonl").read_text().splitlines()[0])
    assert {"loss", "lr", "grad_norm", "tokens_per_s", "samples_per_s", "truncated", "dropped"} <= set(metrics)
    assert (tmp_path / "whole" / "loss_curve.png").stat().st_size > 0
    AudioFlamingo3ForConditionalGeneration.from_pretrained(tmp_path / "whole" / "final")
    again = Log()  # a finished training is kept, not redone
    assert Af3Trainer(c).train(tones, tmp_path / "whole", again)["digest"] == whole["digest"]
    assert not [e for e in again.events if e["event"] == "train step"]
    with pytest.raises(BadInput, match="other settings"):  # never kept (or resumed) under other settings
        Af3Trainer(config(af3_folder, tones, per_device_batch=1, global_batch=2, max_steps=5)).train(
            tones, tmp_path / "whole", Log())


def test_lora_and_frozen_audio_tower(af3_folder, tones, tmp_path):
    pytest.importorskip("peft")
    from afcot_flamingo.config import LoraConfig
    from safetensors.torch import load_file

    c = config(af3_folder, tones, lora=LoraConfig(r=4, alpha=8, dropout=0.0), freeze_audio_tower=True,
               max_steps=1, num_workers=0, plot=False)
    Af3Trainer(c).train(tones, tmp_path, Log())
    before, after = load_file(af3_folder / "model.safetensors"), load_file(tmp_path / "final" / "model.safetensors")
    assert before.keys() == after.keys()  # the adapter is merged: a plain AF3 folder
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and all("language_model" in k and "proj" in k for k in changed)
    assert (tmp_path / "adapter" / "adapter_config.json").exists()


def torchrun(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m",
                           "afcot_core.cli", "recipe", "run", *args], capture_output=True, text=True, timeout=timeout)


TRAIN_ONLY = """[run]
name = "ddp"
stages = ["train"]
[train]
use = "af3"
"""


def test_two_processes_match_one_process_under_ddp_and_fsdp(af3_folder, tones, tmp_path):
    """gloo, 2 ranks x 1 sample x 2 accumulation steps == 1 process x 1 sample x 4 accumulation steps, with a full
    copy per rank (ddp) and with parameters, gradients and optimiser state sharded per block (fsdp); a sharded
    checkpoint of 2 processes is not resumed by 1."""
    from safetensors.torch import load_file

    recipe = tmp_path / "ddp.toml"
    recipe.write_text(TRAIN_ONLY)
    sets = dict(model=str(af3_folder), data=str(tones), device="cpu", dtype="float32", learning_rate=3e-3,
                schedule="constant", warmup_ratio=0.0, global_batch=4, per_device_batch=1, max_steps=2,
                num_workers=0, shuffle_buffer=0, checkpoint_every=1, plot=False, cpu_threads=1)
    Af3Trainer(Af3TrainConfig(**sets)).train(tones, tmp_path / "one", Log())
    one = load_file(tmp_path / "one/final/model.safetensors")
    init = load_file(af3_folder / "model.safetensors")
    for strategy in ("ddp", "fsdp"):
        flags = [a for k, v in {**sets, "strategy": strategy}.items() for a in ("--set", f"train.{k}={json.dumps(v)}")]
        result = torchrun(str(recipe), "--out", str(tmp_path / strategy), "--quiet", *flags)
        assert result.returncode == 0, result.stderr[-3000:]
        two = load_file(tmp_path / strategy / "train/final/model.safetensors")
        assert two.keys() == one.keys() and any(not torch.equal(init[k], two[k]) for k in init)
        for k in one:
            assert torch.allclose(one[k], two[k], atol=1e-5, rtol=1e-5), (strategy, k)
    events = [json.loads(line) for line in (tmp_path / "ddp" / "logs" / "run.jsonl").read_text().splitlines()]
    sums = {e["rank"]: e["checksum"] for e in events if e["event"] == "final weights"}
    assert set(sums) == {0, 1} and sums[0] == sums[1]
    planned = [e for e in events if e["event"] == "plan"]  # each rank logs the memory plan before the stages
    assert len(planned) == 2 and planned[0]["estimate"].startswith("train memory: ") and planned[0]["params"] > 0
    shards = sorted(p.name for p in (tmp_path / "fsdp/train/checkpoints/step-00000001").iterdir())
    assert shards == [".metadata", "__0_0.distcp", "__1_0.distcp", "progress.json", "rank-0.pt", "rank-1.pt"]
    shutil.rmtree(tmp_path / "fsdp/train/final")
    with pytest.raises(BadInput, match="made by a training with 2 processes, this one has 1"):
        Af3Trainer(Af3TrainConfig(**sets, strategy="fsdp")).train(tones, tmp_path / "fsdp/train", Log())


def test_a_rank_without_samples_fails_the_job_clearly(af3_folder, tmp_path):
    data = write_shards(tmp_path / "data", 1, per_shard=1)
    recipe = tmp_path / "ddp.toml"
    recipe.write_text(TRAIN_ONLY)
    result = torchrun(str(recipe), "--out", str(tmp_path / "run"), "--quiet", "--set", f"train.model={af3_folder}",
                      "--set", f"train.data={data}", "--set", "train.device=cpu", "--set", "train.global_batch=2",
                      "--set", "train.per_device_batch=1", "--set", "train.cpu_threads=1", timeout=120)
    assert result.returncode != 0
    assert "rank(s) [1] of 2 have no training sample" in result.stderr


def test_quickstart_trains_and_evaluates_the_tiny_student(tmp_path):
    """generate → train (random:tiny AF3) → evaluate ({run}/train/final as a teacher_alm), via the CLI."""
    from .conftest import afcot

    result = afcot("recipe", "run", str(QUICKSTART), "--out", str(tmp_path), "--quiet",
                   "--set", "generate.source.items=16", "--set", "train.max_steps=2",
                   "--set", "evaluate.benchmarks=[{use='embedded-eval', items=6}]",
                   "--set", "evaluate.model.max_new_tokens=4")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert summary["train"]["steps"] == 2
    report = json.loads((tmp_path / "evaluate/embedded-eval/report.json").read_text())
    assert report["overall"]["total"] == summary["evaluate"]["embedded-eval"]["total"] > 0
    assert (tmp_path / "train/metrics.jsonl").exists()


def test_a_perception_stage_trains_captions_first_then_the_task_from_its_weights(af3_folder, tones, tmp_path):
    """``perception_steps``: the student first trains audio -> caption into ``perception/`` (the same steps as a
    caption training of its own), then the task starts from those weights (the same losses as a training that
    names them as its model); a second run keeps both."""
    both = config(af3_folder, tones, perception_steps=2, max_steps=3, checkpoint_every=0, plot=False)
    log = Log()
    summary = Af3Trainer(both).train(tones, tmp_path / "both", log)
    assert summary["steps"] == 3 and (tmp_path / "both" / "perception" / "final" / "checkpoint.json").is_file()
    assert [e["steps"] for e in log.events if e["event"] == "perception stage: audio to caption"] == [2]
    captions = config(af3_folder, tones, cot=False, plain_target="caption", max_steps=2, checkpoint_every=0,
                      plot=False)
    Af3Trainer(captions).train(tones, tmp_path / "captions", Log())
    assert np.allclose(losses(tmp_path / "both" / "perception"), losses(tmp_path / "captions"), rtol=1e-5)
    task = config(af3_folder, tones, model=str(tmp_path / "both" / "perception" / "final"), max_steps=3,
                  checkpoint_every=0, plot=False)
    Af3Trainer(task).train(tones, tmp_path / "task", Log())
    assert np.allclose(losses(tmp_path / "both"), losses(tmp_path / "task"), rtol=1e-5)
    assert not np.allclose(losses(tmp_path / "both")[:1], losses(tmp_path / "captions")[:1], rtol=1e-3)
    again = Log()
    assert Af3Trainer(both).train(tones, tmp_path / "both", again)["digest"] == summary["digest"]
    assert not [e for e in again.events if e["event"] == "train step"]


def test_a_checkpoint_saved_and_loaded_by_one_process_says_nothing_of_process_groups(tmp_path):
    """torch.distributed.checkpoint's "torch.distributed is disabled ... assuming ... a single process" is not
    shown to a user training alone (it reached the console under --quiet)."""
    import warnings

    import torch
    from afcot_flamingo.training import state
    from afcot_flamingo.training.parallel import Group

    model = torch.nn.Linear(3, 2)
    optimizer = torch.optim.AdamW(model.parameters())
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    group = Group(rank=0, world=1, device=torch.device("cpu"))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        state.save(model, optimizer, scheduler, group, tmp_path, step=1, keep=1, settings="s")
        state.load(model, optimizer, scheduler, group, tmp_path / "checkpoints" / "step-00000001")
    assert not [w for w in seen if "torch.distributed is disabled" in str(w.message)]
