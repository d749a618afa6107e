"""The students that learn: the corpus BPE tokenizer, the small random sizes, the shipped pre-trained student."""

from __future__ import annotations

import json

import numpy as np
import pytest
from afcot_flamingo.af3 import Af3Student, Af3Trainer, assistant_labels
from afcot_flamingo.config import TINY, Af3TrainConfig
from afcot_flamingo.tiny import SIZES, STUDENTS, af3_config
from afcot_flamingo.tokenizer import corpus_tokenizer, train_bpe
from afcot_flamingo.training.student import IGNORE, Example

from afcot_core.errors import BadInput

from .student_data import write_shards

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("tokenizers")

HEADER = "<|im_start|>assistant\n"


class Log:
    def info(self, event: str, **kw: object) -> None:
        pass

    warning = info


@pytest.fixture(scope="module")
def tones(tmp_path_factory):
    return write_shards(tmp_path_factory.mktemp("run") / "generate", 24, per_shard=8)


def test_header_stays_atomic_when_the_corpus_invites_merges_across_it():
    """The label mask finds ``<|im_start|>assistant\\n`` although the corpus repeats it glued to its targets."""
    corpus = [f"{HEADER}yes{HEADER}<SUMMARY> no{HEADER}(A) yes<|im_end|>\nassistant\nassistant\nyes"] * 200
    tok = train_bpe(corpus, vocab_size=400)
    header = tok.encode(HEADER, add_special_tokens=False)
    assert tok.convert_ids_to_tokens(header)[0] == "<|im_start|>" and len(header) == 3
    for target in ["yes", "<SUMMARY> no </SUMMARY>", "(A) yes", "\nassistant\nyes"]:
        text = tok.apply_chat_template([{"role": "user", "content": "Is it loud?"},
                                        {"role": "assistant", "content": target}], tokenize=False)
        ids = torch.tensor(tok.encode(text, add_special_tokens=False))
        labels = assistant_labels(ids, header, tok.convert_tokens_to_ids("<|im_end|>"))
        assert tok.decode(labels[labels != IGNORE]) == f"{target}<|im_end|>"
    assert all(len(tok.encode(s, add_special_tokens=False)) == 1 for s in ["<sound>", "<|im_end|>", "<think>"])
    text = "A 2.7-second chirp; it's 'rising' — quieter.\n"
    assert tok.decode(tok.encode(text, add_special_tokens=False)) == text  # byte-level: lossless


def test_corpus_tokenizer_needs_shards(tmp_path):
    with pytest.raises(BadInput, match="bpe"):
        corpus_tokenizer([tmp_path], 300)


def test_small_random_student_with_corpus_bpe_trains_and_reloads(tones):
    """random:tiny with size small and tokenizer bpe: the tokenizer learns the run's words, is saved with the
    checkpoint and reloads through the AF3 processor; the loss falls."""
    from transformers import AutoProcessor

    out = tones.parent / "train"
    config = Af3TrainConfig(model=TINY, size="small", tokenizer="bpe", vocab_size=320, device="cpu", dtype="float32",
                            learning_rate=3e-3, schedule="constant", warmup_ratio=0.0, global_batch=8,
                            per_device_batch=8, max_steps=8, num_workers=0, shuffle_buffer=0, checkpoint_every=0,
                            plot=False, cpu_threads=1)
    summary = Af3Trainer(config).train(tones, out, log=Log())
    assert summary["last_loss"] < summary["first_loss"]
    processor = AutoProcessor.from_pretrained(out / "final")
    tok = processor.tokenizer
    assert len(tok) == 320 and processor.audio_token == "<sound>"
    assert len(tok.encode(" tone", add_special_tokens=False)) == 1  # a word of the corpus is one token
    model_config = json.loads((out / "final" / "config.json").read_text())
    assert model_config["text_config"]["hidden_size"] == SIZES["small"]["text"][0]
    assert model_config["text_config"]["vocab_size"] == len(tok)
    student = Af3Student(config)
    student.build(config, out, "cpu", torch.float32)  # init/ is reused, not trained again
    enc = student.encode(Example(np.zeros(16000, np.float32), (("Is it high? (A) yes. (B) no.", "(A) yes"),), "t"))
    assert tok.decode(enc["labels"][enc["labels"] != IGNORE]) == "(A) yes<|im_end|>"


def test_tiny_and_mid_sizes_keep_the_byte_tokenizer():
    assert af3_config().text_config.vocab_size == 256 + 1 + 12
    assert af3_config("mid").text_config.hidden_size == 1024


def test_shipped_student_loads_and_answers():
    """The quickstart's starting point is in the package, a few MB, and generates through the real AF3 code."""
    from transformers import AudioFlamingo3ForConditionalGeneration, AutoProcessor

    folder = STUDENTS / "mini"
    assert sum(f.stat().st_size for f in folder.iterdir()) < 8e6
    config = Af3TrainConfig(model=TINY, pretrained="mini", device="cpu", dtype="float32")
    student = Af3Student(config)
    student.build(config, folder, "cpu", torch.float32)
    assert student.processor.tokenizer.decode(student._header) == HEADER
    processor = AutoProcessor.from_pretrained(folder)
    model = AudioFlamingo3ForConditionalGeneration.from_pretrained(folder)
    text = processor.apply_chat_template([{"role": "user", "content": [{"type": "audio"}, {
        "type": "text", "text": "Classify the sound."}]}], tokenize=False, add_generation_prompt=True)
    enc = processor(text=[text], audio=[np.zeros(16000, np.float32)], return_tensors="pt")
    out = model.generate(**enc, max_new_tokens=3, do_sample=False)
    assert out.shape[1] == enc["input_ids"].shape[1] + 3
    with pytest.raises(BadInput, match="mini"):
        Af3Student(config).build(Af3TrainConfig(model=TINY, pretrained="nope"), folder, "cpu", torch.float32)


def test_shipped_student_scores_above_chance_held_out(tmp_path):
    """The quickstart's starting point has learned: on 20 held-out embedded-eval items it scores above chance
    (a random student closes no ``</CONCLUSION>`` and scores 0)."""
    from .conftest import QUICKSTART, afcot

    result = afcot("recipe", "run", str(QUICKSTART), "--out", str(tmp_path), "--quiet", "--stages", "evaluate",
                   "--set", f"evaluate.model.model={STUDENTS / 'mini'}",
                   "--set", "evaluate.benchmarks=[{use='embedded-eval', items=20}]")
    assert result.returncode == 0, result.stderr
    items = [json.loads(line) for line in (tmp_path / "evaluate/embedded-eval/embedded-eval-predictions.jsonl")
             .read_text().splitlines()]
    chance = sum(1 / len(it["choices"]) for it in items) / len(items)
    report = json.loads((tmp_path / "evaluate/embedded-eval/report.json").read_text())
    assert report["overall"]["total"] == 20
    assert report["overall"]["accuracy"] >= 0.45 > chance
