"""How each student reads audio (AF2: channel 0 of a stereo file, as released) and the prompt layout per recipe."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import structlog
from afcot_benchmarks.af_eval import AfEvalConfig, AfReasoningEval
from afcot_benchmarks.stage import EvaluateStage
from afcot_io.formats import split_prompt

from afcot_core.errors import BadInput
from afcot_core.plugins import default
from afcot_core.progress import Bar
from afcot_core.recipe import convert
from afcot_core.records import AudioRef, CoT, Item, Record
from afcot_core.template import inline_prompt

torch = pytest.importorskip("torch")
pytest.importorskip("torchaudio")

from afcot_flamingo.af2.answer import Af2AnswerConfig, Af2Answerer  # noqa: E402
from afcot_flamingo.af2.features import windows  # noqa: E402
from afcot_flamingo.af2.trainer import Af2Student, Af2TrainConfig  # noqa: E402
from afcot_flamingo.training.data import StreamPlan, open_sources, read_wave, worker_batches  # noqa: E402

from .test_bench_trained_format import PROMPTS  # noqa: E402
from .test_bench_trained_format import plugins as plugins  # noqa: E402

RATE = 16000
AF_DIR = Path(__file__).parent / "fixtures" / "bench" / "af_eval"
CHOOSE = "Choose the correct option from the following options:"


def stereo() -> np.ndarray:
    """1 s of two unrelated channels: a tone on the left, noise on the right."""
    t = np.arange(RATE) / RATE
    left = 0.3 * np.sin(2 * np.pi * 440 * t)
    right = 0.2 * np.random.default_rng(0).standard_normal(RATE)
    return np.stack([left, right], axis=1).astype(np.float32)


def flac(wave: np.ndarray) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, wave, RATE, format="FLAC", subtype="PCM_24")
    return buf.getvalue()


@pytest.fixture(scope="module")
def stereo_shards(tmp_path_factory):
    """One shard of two stereo samples (FLAC kept as is by the sink)."""
    folder = tmp_path_factory.mktemp("stereo") / "generate"
    folder.mkdir()
    records = []
    for i in range(2):
        item = Item(id=f"st-{i}", audio=AudioRef(data=flac(stereo()), format="flac"), question="Which pitch?",
                    answer="high", kind="aqa", choices=["high", "low"])
        cot = CoT(summary="s.", caption="c.", reasoning="r.", conclusion="high")
        records.append(Record(item=item, strategy="test", verdict="accepted", cot=cot))
    registration = default().registry("sink").get("webdataset", where="test")
    registration.build(registration.config()).write(folder / "shard-000000.tar", records)
    return folder


def af2_batch(af2_folder, shards, **settings):
    config = Af2TrainConfig(model=str(af2_folder), data=str(shards), device="cpu", dtype="float32",
                            global_batch=1, per_device_batch=1, num_workers=0, **settings)
    student = Af2Student(config)
    student.build(config, af2_folder.parent, "cpu", torch.float32)
    plan = StreamPlan(sources=open_sources([], shards, cot=True), encode=student.encode, collate=student.collate,
                      batch_size=1, max_length=1024, overlong="drop", seed=0, rank=0, world=1, workers=0,
                      shuffle_buffer=0)
    batch, _ = next(worker_batches(plan, 0))
    return student, batch


def test_the_af2_student_trains_on_channel_0_of_a_stereo_file(af2_folder, stereo_shards):
    student, batch = af2_batch(af2_folder, stereo_shards)
    left = stereo()[:, 0]
    expected = windows(left, student.clap)
    assert np.allclose(batch["audio"][0, : expected.shape[0]].numpy(), expected, atol=1e-4)
    mixed = windows(read_wave(flac(stereo()), "x"), student.clap)
    assert not np.allclose(batch["audio"][0, : mixed.shape[0]].numpy(), mixed, atol=1e-2)


def test_other_students_keep_the_mean_of_the_channels(stereo_shards):
    seen = []

    def encode(example):
        seen.append(example.wave)
        return {"input_ids": torch.ones(3, dtype=torch.long), "attention_mask": torch.ones(3, dtype=torch.long),
                "labels": torch.ones(3, dtype=torch.long)}

    plan = StreamPlan(sources=open_sources([], stereo_shards, cot=True), encode=encode, collate=lambda b: b,
                      batch_size=1, max_length=64, overlong="drop", seed=0, rank=0, world=1, workers=0,
                      shuffle_buffer=0)
    next(worker_batches(plan, 0))
    assert np.allclose(seen[0], stereo().mean(axis=1), atol=1e-4)


def test_af2_answers_from_channel_0_of_a_stereo_file(af2_folder, tmp_path):
    from afcot_core.teacher import Request

    both, left = tmp_path / "both.flac", tmp_path / "left.flac"
    both.write_bytes(flac(stereo()))
    left.write_bytes(flac(stereo()[:, :1]))
    model = Af2Answerer(Af2AnswerConfig(model=str(af2_folder), device="cpu", dtype="float32", max_new_tokens=6,
                                        temperature=0.0))
    with torch.no_grad():
        for block in model.net.cross_attn:
            block.attn_gate.fill_(1.0)
    for ref in (AudioRef(path=str(both)), AudioRef(data=both.read_bytes())):
        got = model._windows(Request("What?", ref))
        assert np.allclose(got, windows(stereo()[:, 0], model.net.config.clap), atol=1e-4)
    assert model.generate([Request("What?", AudioRef(path=str(both)))]) == model.generate(
        [Request("What?", AudioRef(path=str(left)))])
    with pytest.raises(ValueError, match=r"no such audio file: .*gone\.flac"):
        model._windows(Request("What?", AudioRef(path=str(tmp_path / "gone.flac"))))


def test_a_train_recipe_lays_out_the_options_as_the_model_card(af2_folder, stereo_shards):
    student, batch = af2_batch(af2_folder, stereo_shards, prompt_layout="model-card")
    text = student.tokenizer.decode(batch["input_ids"][0])
    expected = inline_prompt("Which pitch?", ["high", "low"], True, "model-card").lower()
    assert CHOOSE.lower() + "\n(a) high\n(b) low." in text and expected in text
    student, batch = af2_batch(af2_folder, stereo_shards)
    assert "which pitch?\n(a) high. (b) low. output" in student.tokenizer.decode(batch["input_ids"][0])


def test_an_unknown_train_layout_names_the_key():
    with pytest.raises(BadInput, match=r"prompt_layout"):
        convert({"prompt_layout": "card"}, Af2TrainConfig, "train")


def test_af_reasoning_eval_in_the_model_card_layout():
    bench = AfReasoningEval(AfEvalConfig(data_dir=str(AF_DIR), subsets=["AQA-MCQ"]))
    item = bench.load().items[0]
    assert bench.trained_prompt(item, True) == item.prompt  # inline: the native prompt as shipped
    card = bench.trained_prompt(item, True, "model-card")
    assert card == inline_prompt(item.question, item.choices, True, "model-card") and CHOOSE in card
    assert split_prompt(card) == (item.question, list(item.choices))


def test_the_evaluate_stage_asks_in_the_recipe_layout(plugins, tmp_path):
    PROMPTS.clear()
    table = {"model": {"use": "letter"}, "format": "trained", "prompt_layout": "model-card", "concurrency": 4,
             "benchmarks": [{"use": "embedded-eval", "items": 6}]}
    section = EvaluateStage().parse(table, plugins)
    section.run_into(tmp_path, structlog.get_logger(), lambda name, total: Bar(name, total, False))
    assert PROMPTS and all(CHOOSE in p for p in PROMPTS)
    meta = json.loads((tmp_path / "embedded-eval" / "run.json").read_text())
    assert meta["prompt_layout"] == "model-card"
    with pytest.raises(BadInput, match=r"prompt_layout.*format = \\?\"trained\\?\""):
        EvaluateStage().parse({**table, "format": "benchmark"}, plugins)
    with pytest.raises(BadInput, match=r"prompt_layout"):
        EvaluateStage().parse({**table, "prompt_layout": "card"}, plugins)
