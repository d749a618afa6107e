"""The AF2 student on the shared training loop: format, loss going down, resume, DDP; and AF2 answering prompts."""

from __future__ import annotations

import json
import multiprocessing
import re
import signal

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchaudio")

from afcot_flamingo.af2.answer import Af2AnswerConfig, Af2Answerer  # noqa: E402
from afcot_flamingo.af2.trainer import Af2Student, Af2TrainConfig, Af2Trainer  # noqa: E402
from afcot_flamingo.training.student import IGNORE, Example  # noqa: E402

from .student_data import write_shards  # noqa: E402
from .test_af3_trainer import TRAIN_ONLY, Log, losses, torchrun  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """One intra-op thread: on a shared, loaded CPU two threads make these tiny models ten times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def tones(tmp_path_factory):
    return write_shards(tmp_path_factory.mktemp("tones") / "generate", 12, per_shard=4)


def config(af2_folder, tones, **kw):
    base = dict(model=str(af2_folder), data=str(tones), device="cpu", dtype="float32", learning_rate=3e-3,
                weight_decay=0.0, schedule="constant", global_batch=4, per_device_batch=2, max_steps=6,
                num_workers=0, shuffle_buffer=8, checkpoint_every=2, plot=False)
    return Af2TrainConfig(**{**base, **kw})


def test_examples_become_af2_text_with_loss_on_the_output_only(af2_folder):
    student = Af2Student(config(af2_folder, None))
    student.build(student.config, af2_folder, "cpu", torch.float32)
    tok = student.tokenizer
    waves = [np.zeros(16000 * 4, np.float32), np.ones(16000 * 21, np.float32)]
    enc = [student.encode(Example(w, ((f"Is it LOUD? {i}", "<SUMMARY> Yes </SUMMARY>"),), "test"))
           for i, w in enumerate(waves)]
    ids, labels = enc[0]["input_ids"], enc[0]["labels"]
    assert tok.decode(ids) == "<audio>is it loud? 0<SEP><summary> yes </summary><|endofchunk|><|endoftext|>"
    assert tok.decode(labels[labels != IGNORE]) == "<summary> yes </summary><|endofchunk|><|endoftext|>"
    batch = student.collate(enc)
    assert batch["audio"].shape == (2, 3, 160000) and batch["audio_mask"].tolist() == [[1, 0, 0], [1, 1, 1]]
    assert batch["input_ids"].shape == batch["labels"].shape
    assert student.model(**batch).loss.isfinite()


def test_training_lowers_the_loss_and_a_killed_run_resumes_on_the_same_curve(af2_folder, tones, tmp_path):
    from afcot_flamingo.af2.model import Af2Model

    c = config(af2_folder, tones)
    whole = Af2Trainer(c).train(tones, tmp_path / "whole", Log())
    curve = losses(tmp_path / "whole")
    assert whole["steps"] == 6 and np.mean(curve[-2:]) < np.mean(curve[:2])
    child = multiprocessing.get_context("fork").Process(  # killed (SIGKILL) after step 5; step 4 was saved
        target=Af2Trainer(c).train, args=(tones, tmp_path / "cut", Log(kill_at=5)))
    child.start()
    child.join(180)
    assert child.exitcode == -signal.SIGKILL and not (tmp_path / "cut" / "final").exists()
    log = Log()
    Af2Trainer(c).train(tones, tmp_path / "cut", log)
    assert [e["step"] for e in log.events if e["event"] == "resuming training"] == [4]
    assert np.allclose(losses(tmp_path / "cut"), curve, rtol=1e-5)
    trained = Af2Model.from_pretrained(tmp_path / "whole" / "final")
    assert any(float(b.attn_gate.detach()) != 0.0 for b in trained.cross_attn)
    start = Af2Model.from_pretrained(af2_folder)
    for name, p in trained.llm.named_parameters():
        if ".layers." in name:
            assert torch.equal(p, start.llm.get_parameter(name)), name  # the LM blocks stay frozen
    embed, before = trained.llm.get_input_embeddings().weight, start.llm.get_input_embeddings().weight
    learned = (embed != before).any(dim=1).nonzero().flatten().tolist()  # only the new tokens' rows learn
    assert learned == sorted([start.config.media_token_id, start.config.eoc_token_id])


@pytest.mark.parametrize("strategy", ["ddp", "fsdp"])
def test_two_processes_match_one_process(af2_folder, tones, tmp_path, strategy):
    """gloo, 2 ranks x 1 sample x 2 accumulation steps == 1 process x 1 sample x 4 accumulation steps, with a
    full copy per rank (ddp) or sharded per block (fsdp: LM layers, cross-attention blocks, audio layers)."""
    from safetensors.torch import load_file

    recipe = tmp_path / "ddp.toml"
    recipe.write_text(TRAIN_ONLY.replace('use = "af3"', 'use = "af2"'))
    sets = dict(model=str(af2_folder), data=str(tones), device="cpu", dtype="float32", learning_rate=3e-3,
                schedule="constant", global_batch=4, per_device_batch=1, max_steps=2, num_workers=0,
                shuffle_buffer=0, checkpoint_every=0, plot=False)
    Af2Trainer(Af2TrainConfig(**sets)).train(tones, tmp_path / "one", Log())
    flags = [a for k, v in {**sets, "strategy": strategy}.items() for a in ("--set", f"train.{k}={json.dumps(v)}")]
    result = torchrun(str(recipe), "--out", str(tmp_path / "two"), "--quiet", *flags)
    assert result.returncode == 0, result.stderr[-3000:]
    one = load_file(tmp_path / "one/final/model.safetensors")
    two = load_file(tmp_path / "two/train/final/model.safetensors")
    init = load_file(af2_folder / "model.safetensors")
    assert any(not torch.equal(init[k], two[k]) for k in init)
    # Batch-norm statistics differ by design (each rank counts its own batches). Some weights have a true gradient
    # of zero, so Adam turns their rounding noise into steps of random sign: a convolution bias that feeds a batch
    # norm, and, with one window per clip, the fusion's global branch (its batch norm sees a single pooled sample
    # twice and outputs its bias whatever comes in).
    noise = re.compile(r"running_|num_batches_tracked|"
                       r"fusion_model\.(local_att\.[03]\.bias|global_att\.([124]\.|5\.weight))")
    differ = [k for k in one if not noise.search(k) and not torch.allclose(one[k], two[k], atol=1e-5, rtol=1e-4)]
    assert not differ, differ


def test_answers_are_seeded_per_request_batched_and_lowercased(af2_folder, tmp_path):
    import soundfile as sf

    from afcot_core.audio import AudioRef
    from afcot_core.teacher import Request

    rng = np.random.default_rng(0)
    refs = []
    for i, seconds in enumerate((3, 14)):
        path = tmp_path / f"clip{i}.wav"
        sf.write(path, rng.standard_normal(16000 * seconds).astype(np.float32) * 0.1, 16000)
        refs.append(AudioRef(path=str(path)))
    model = Af2Answerer(Af2AnswerConfig(model=str(af2_folder), device="cpu", dtype="float32", max_new_tokens=12))
    with torch.no_grad():
        for block in model.net.cross_attn:
            block.attn_gate.fill_(1.0)
    a = Request("What IS it?", refs[0], seed=1)
    b = Request("Is it LOUD?", refs[1], seed=2)
    together = model.generate([a, b])
    assert together == [model.generate([a])[0], model.generate([b])[0]]  # a row does not depend on its neighbours
    assert all(t == t.lower() for t in together)
    assert model.generate([Request("What IS it?", refs[0], seed=3)]) != together[:1]


def test_quickstart_af2_end_to_end(tmp_path):
    """recipes/quickstart_af2.toml via the CLI: embedded world → shards → tiny AF2 trained → evaluated as af2."""
    from afcot_flamingo.af2.model import Af2Model

    from .conftest import ROOT, afcot

    result = afcot("recipe", "run", str(ROOT / "recipes" / "quickstart_af2.toml"), "--out", str(tmp_path), "--quiet")
    assert result.returncode == 0, result.stderr[-3000:]
    curve = losses(tmp_path / "train")
    assert len(curve) == 8 and np.mean(curve[-2:]) < np.mean(curve[:2])  # the quickstart's shards are learned
    Af2Model.from_pretrained(tmp_path / "train" / "final")
    report = json.loads((tmp_path / "evaluate/embedded-eval/report.json").read_text())
    assert report["overall"]["total"] == 8 and report["overall"]["missing"] == 0


def test_a_cot_without_conclusion_is_continued_once_from_the_cut_reasoning(af2_folder, tmp_path):
    """The repair wiring: the second pass continues from prompt + cut; the reply is cut + continuation."""
    import soundfile as sf

    from afcot_core.audio import AudioRef
    from afcot_core.teacher import Request

    class Scripted(Af2Answerer):  # the model's replies scripted, the answering logic real
        def _run(self, texts, clips, seeds):
            self.calls.append(texts)
            return [self.replies.pop(0) for _ in texts]

    path = tmp_path / "clip.wav"
    sf.write(path, np.zeros(16000, np.float32), 16000)
    model = Scripted(Af2AnswerConfig(model=str(af2_folder), device="cpu", dtype="float32"))
    model.calls, model.replies = [], ["<summary>S</summary><reasoning>It barks. Then<|endofchunk|>",
                                      "<reasoning>fine</reasoning><conclusion>b</conclusion>",
                                      " dog</CONCLUSION><|endofchunk|><|endoftext|>"]
    replies = model.generate([Request("Q?", AudioRef(path=str(path))), Request("R?", AudioRef(path=str(path)))])
    assert replies == ["<summary>s</summary><reasoning>it barks</reasoning>\n<conclusion> dog</conclusion>",
                       "<reasoning>fine</reasoning><conclusion>b</conclusion>"]
    assert model.calls[1] == ["<audio>q?<SEP><summary>s</summary><reasoning>it barks</REASONING>\n<CONCLUSION>"]


def test_released_warmup_is_counted_in_steps_and_replaces_the_ratio():
    import msgspec
    from afcot_flamingo.af2.trainer import Af2TrainConfig
    from afcot_flamingo.training.loop import warmup_steps

    released = msgspec.convert({"warmup_steps": 1875, "warmup_ratio": 0.5}, Af2TrainConfig)
    assert warmup_steps(released, 100_000) == 1875
    assert warmup_steps(msgspec.convert({"warmup_ratio": 0.03}, Af2TrainConfig), 1000) == 30
    with pytest.raises(msgspec.ValidationError, match="warmup_steps"):
        msgspec.convert({"warmup_steps": -1}, Af2TrainConfig)
