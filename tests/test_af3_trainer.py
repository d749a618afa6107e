"""The AF3 trainer on a tiny random AF3 saved like the real checkpoint, fed by quickstart shards."""

import pytest
from afcot_flamingo.af3 import collate, conversation, read_samples

from afcot_core import recipe as recipes
from afcot_core import runner

from .conftest import QUICKSTART
from .tiny_models import save_af3

pytest.importorskip("transformers")


@pytest.fixture(scope="session")
def af3_folder(tmp_path_factory):
    return save_af3(tmp_path_factory.mktemp("af3") / "af3")


@pytest.fixture(scope="session")
def shards(tmp_path_factory, plugins):
    out = tmp_path_factory.mktemp("gen")
    runner.run(recipes.load(QUICKSTART, plugins, ["generate.source.items=12", "generate.shard_size=6"]), plugins,
               out, stages=["generate"], show_progress=False)
    return out


def test_labels_cover_only_the_assistant_turn(af3_folder, shards):
    from transformers import AutoProcessor

    processor = AutoProcessor.from_pretrained(af3_folder)
    samples = list(read_samples(sorted((shards / "generate").glob("shard-*.tar")), cot=True))[:2]
    batch = collate(processor, samples, max_length=8192)
    tok = processor.tokenizer
    for row, (_, prompt, target) in enumerate(samples):
        kept = batch["labels"][row][batch["labels"][row] != -100].tolist()
        assert tok.decode(kept) == target + "<|im_end|>\n"
        assert prompt.endswith("<CONCLUSION> tags.")
    audio_id = tok.convert_tokens_to_ids("<sound>")
    assert (batch["labels"][batch["input_ids"] == audio_id] == -100).all()
    assert collate(processor, samples, max_length=10) is None
    assert "<sound>" in processor.apply_chat_template(conversation("q", None), tokenize=False)


def test_train_stage_lowers_the_loss_and_saves_a_loadable_checkpoint(af3_folder, shards, plugins, tmp_path):
    import shutil

    from transformers import AudioFlamingo3ForConditionalGeneration

    shutil.copytree(shards / "generate", tmp_path / "generate")
    sets = ["generate.source.items=12", "generate.shard_size=6", f"train.model={af3_folder}",
            "train.learning_rate=0.003", "train.global_batch=2", "train.per_device_batch=2", "train.max_steps=4"]
    recipe = recipes.load(QUICKSTART, plugins, sets)
    result = runner.run(recipe, plugins, tmp_path, stages=["train"], show_progress=False)["train"]
    assert result["steps"] == 4 and result["last_loss"] < result["first_loss"]
    AudioFlamingo3ForConditionalGeneration.from_pretrained(result["checkpoint"])


def test_quickstart_trains_and_evaluates_the_tiny_student(tmp_path):
    """generate → train (random:tiny AF3) → evaluate ({run}/train/final as a teacher_alm), via the CLI."""
    import json

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
    assert (tmp_path / "evaluate/embedded-eval/report.md").exists()


def test_no_usable_samples_is_bad_input_not_a_hang(af3_folder, plugins, tmp_path):
    import tarfile

    import pytest

    from afcot_core.errors import BadInput

    (tmp_path / "data").mkdir()
    tarfile.open(tmp_path / "data" / "shard-000000.tar", "w").close()
    sets = [f"train.model={af3_folder}", f"train.data={tmp_path / 'data'}", "train.global_batch=2",
            "train.per_device_batch=2", "train.max_steps=3"]
    with pytest.raises(BadInput, match="no usable training samples"):
        runner.run(recipes.load(QUICKSTART, plugins, sets), plugins, tmp_path / "run", stages=["train"],
                   show_progress=False)


def test_ddp_on_two_cpu_processes(shards, tmp_path):
    """torchrun, 2 processes, gloo: shards split by rank, gradients synchronised, one checkpoint."""
    import json
    import shutil
    import subprocess
    import sys

    from transformers import AudioFlamingo3ForConditionalGeneration

    shutil.copytree(shards / "generate", tmp_path / "generate")
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "-m", "afcot_core.cli",
         "recipe", "run", str(QUICKSTART), "--out", str(tmp_path), "--stages", "train", "--quiet",
         "--set", "generate.source.items=12", "--set", "generate.shard_size=6", "--set", "train.global_batch=4",
         "--set", "train.per_device_batch=2", "--set", "train.max_steps=2"],
        capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr[-2000:]
    events = [json.loads(line) for line in (tmp_path / "logs" / "run.jsonl").read_text().splitlines()]
    steps = [(e["rank"], e["step"]) for e in events if e["event"] == "train step"]
    assert sorted(steps) == [(0, 1), (0, 2), (1, 1), (1, 2)]
    AudioFlamingo3ForConditionalGeneration.from_pretrained(tmp_path / "train" / "final")
