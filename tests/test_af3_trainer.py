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
               out, show_progress=False)
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
    text = QUICKSTART.read_text().replace('stages = ["generate"]', 'stages = ["generate", "train"]')
    text += (f'\n[train]\nuse = "af3"\nmodel = "{af3_folder}"\ndevice = "cpu"\ndtype = "float32"\n'
             "learning_rate = 0.003\nglobal_batch = 2\nper_device_batch = 2\nmax_steps = 4\nwarmup_ratio = 0.0\n"
             'schedule = "constant"\n')
    recipe_path = tmp_path / "r.toml"
    recipe_path.write_text(text)
    recipe = recipes.load(recipe_path, plugins, ["generate.source.items=12", "generate.shard_size=6"])
    result = runner.run(recipe, plugins, tmp_path, stages=["train"], show_progress=False)["train"]
    assert result["steps"] == 4 and result["last_loss"] < result["first_loss"]
    AudioFlamingo3ForConditionalGeneration.from_pretrained(result["checkpoint"])
