"""The Qwen teachers' transformers backend, on tiny random-weight models saved like real checkpoints."""

import asyncio

import numpy as np
import pytest

from afcot_core import recipe as recipes
from afcot_core import runner
from afcot_core.audio import audio_ref_from_wave
from afcot_core.errors import BadInput

from .conftest import QUICKSTART
from .tiny_models import save_omni_thinker, save_qwen3

pytest.importorskip("transformers")


@pytest.fixture(scope="session")
def qwen_folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("qwen")
    return save_qwen3(root / "qwen3"), save_omni_thinker(root / "omni")


def _build(plugins, role, name, **config):
    reg = plugins.registry(role).get(name)
    import msgspec

    return reg.build(msgspec.convert(config, reg.config))


def test_omni_answers_depend_on_the_audio_and_batches_mix_text_only(plugins, qwen_folders):
    _, omni = qwen_folders
    alm = _build(plugins, "teacher_alm", "qwen2.5-omni", model=str(omni), device="cpu", dtype="float32",
                 max_new_tokens=6)
    rng = np.random.default_rng(0)
    a = audio_ref_from_wave((0.3 * np.sin(np.arange(32000) * 0.05)).astype(np.float32), 16000)
    b = audio_ref_from_wave((0.3 * rng.standard_normal(20000)).astype(np.float32), 16000)

    async def ask_all():
        return await asyncio.gather(alm.ask("Describe.", a), alm.ask("Describe.", b), alm.ask("Describe.", None))

    replies = [r.text for r in asyncio.run(ask_all())]
    assert alm.batch_sizes == [3]
    assert len(set(replies)) >= 2  # the audio changes what the model says
    enc = alm.tok([alm._prompt("x", 50)], return_tensors="pt")
    assert int((enc["input_ids"] == alm.lm.config.audio_token_index).sum()) == 50


def test_qwen3_reply_is_the_text_after_think(plugins, qwen_folders):
    qwen3, _ = qwen_folders
    llm = _build(plugins, "teacher_llm", "qwen3", model=str(qwen3), device="cpu", dtype="float32", max_new_tokens=5)
    ids = llm.tok.encode("<think>plan</think>{\"a\": 1}", add_special_tokens=False)
    assert llm.tok.decode(ids[len(ids) - ids[::-1].index(llm.think_end):]) == '{"a": 1}'
    replies = llm.generate([__import__("afcot_core.teacher", fromlist=["Request"]).Request("hi")] * 2)
    assert len(replies) == 2 and replies[0] == replies[1]


def test_generate_stage_runs_on_the_real_teachers(plugins, qwen_folders, tmp_path):
    qwen3, omni = qwen_folders
    sets = [f'generate.llm={{use="qwen3", model="{qwen3}", device="cpu", dtype="float32", max_new_tokens=8}}',
            f'generate.alm={{use="qwen2.5-omni", model="{omni}", device="cpu", dtype="float32", max_new_tokens=8}}',
            "generate.source.items=4", "generate.json_retries=0"]
    result = runner.run(recipes.load(QUICKSTART, plugins, sets), plugins, tmp_path, stages=["generate"],
                        show_progress=False)
    counts = result["generate"]
    assert counts["accepted"] + counts["rejected"] + counts["failed"] == 4 and counts["failed"] == 0
    # random weights never write valid JSON: every item is rejected at its first LLM step, with the reason
    text = (tmp_path / "generate" / "rejects-000000.jsonl").read_text()
    assert text.count("malformed LLM JSON") == 4


def test_missing_weights_stop_the_run_before_any_work(plugins, tmp_path):
    sets = ['generate.llm={use="qwen3", model="Qwen/Qwen3-8B"}']
    with pytest.raises(BadInput) as err:
        runner.run(recipes.load(QUICKSTART, plugins, sets), plugins, tmp_path / "out", stages=["generate"],
                   show_progress=False)
    assert "Qwen/Qwen3-8B" in str(err.value) and "huggingface-cli download Qwen/Qwen3-8B" in str(err.value)
    assert not (tmp_path / "out").exists()
