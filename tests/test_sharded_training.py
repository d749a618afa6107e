"""The parts that make a full-size student fit: the chunked loss, activation checkpointing, FSDP units per block,
and a killed sharded training resumed on the same loss curve."""

from __future__ import annotations

import multiprocessing
import signal

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from afcot_flamingo.af2.trainer import Af2Student, Af2TrainConfig  # noqa: E402
from afcot_flamingo.af3 import Af3Student, Af3Trainer  # noqa: E402
from afcot_flamingo.training.loss import Objective, cross_entropy  # noqa: E402
from afcot_flamingo.training.parallel import checkpoint_blocks, join, spread  # noqa: E402
from afcot_flamingo.training.student import IGNORE, Example  # noqa: E402

from .student_data import write_shards  # noqa: E402
from .test_af3_trainer import Log, config, losses  # noqa: E402


@pytest.fixture(scope="module")
def tones(tmp_path_factory):
    return write_shards(tmp_path_factory.mktemp("tones") / "generate", 12, per_shard=4)


TURNS = [(("Is it loud? (A) yes. (B) no.", "<SUMMARY> the loudness </SUMMARY> (A) yes"),),
         (("What is it?", "A dog."), ("Is it loud?", "Yes, quite loud."))]


def af3(folder):
    student = Af3Student(config(folder, None))
    student.build(student.config, folder, "cpu", torch.float32)
    return student


def af2(folder):
    c = Af2TrainConfig(model=str(folder), device="cpu", dtype="float32")
    student = Af2Student(c)
    student.build(c, folder, "cpu", torch.float32)
    student.model.eval()  # no dropout, no random fusion window: the same function twice
    return student


def batch_of(student, turns=TURNS):
    rng = np.random.default_rng(0)
    return student.collate([student.encode(Example(rng.standard_normal(24000).astype(np.float32) * 0.1, t, "x"))
                            for t in turns])


def grads(module):
    return {n: p.grad.detach().clone() for n, p in module.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("chunk", [0, 1, 7, 10_000])
def test_chunked_cross_entropy_equals_the_models_own_loss(af3_folder, chunk):
    """Value and gradients equal the model's ``labels=`` loss, whatever the chunk, with labels masked anywhere."""
    student = af3(af3_folder)
    batch = batch_of(student)
    batch["labels"][0, (batch["labels"][0] != IGNORE).nonzero().flatten()[2:5]] = IGNORE  # a hole in a target
    own = student.model(**batch).loss
    own.backward()
    expected = grads(student.model)
    student.model.zero_grad()
    ours = Objective(student.model, student, chunk)(**dict(batch))
    ours.backward()
    assert torch.allclose(ours, own, rtol=1e-6, atol=1e-6)
    got = grads(student.model)
    assert got.keys() == expected.keys()
    for name in expected:
        scale = float(expected[name].abs().max())  # float32 sums in another order: noise of ~1e-7 of the scale
        assert torch.allclose(got[name], expected[name], rtol=1e-5, atol=1e-6 * scale), name


def test_cross_entropy_counts_only_the_labelled_next_tokens():
    torch.manual_seed(0)
    head = torch.nn.Linear(4, 9, bias=False)
    hidden = torch.randn(2, 5, 4)
    labels = torch.tensor([[IGNORE, IGNORE, 3, 4, IGNORE], [IGNORE, 1, IGNORE, IGNORE, 8]])
    logits = head(hidden)
    rows = [(0, 1, 3), (0, 2, 4), (1, 0, 1), (1, 3, 8)]  # (sample, position predicting, token)
    expected = torch.stack([torch.nn.functional.cross_entropy(logits[b, t], torch.tensor(y)) for b, t, y in rows])
    for chunk in (0, 1, 3):
        assert torch.allclose(cross_entropy(hidden, labels, head, chunk), expected.mean())
    assert cross_entropy(hidden, torch.full_like(labels, IGNORE), head, 2).item() == 0.0


def saved_bytes(loss_fn):
    """Bytes the autograd graph keeps for the backward pass while ``loss_fn`` runs."""
    seen: dict[int, int] = {}

    def pack(t):
        seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = loss_fn()
    return loss, sum(seen.values())


@pytest.mark.parametrize("kind", ["af3", "af2"])
def test_checkpointed_blocks_keep_less_and_give_the_same_gradients(af3_folder, af2_folder, kind):
    student = af3(af3_folder) if kind == "af3" else af2(af2_folder)
    batch = batch_of(student, TURNS[:1] * 2)
    objective = Objective(student.model, student, 0)
    loss, kept = saved_bytes(lambda: objective(**dict(batch)))
    loss.backward()
    plain = grads(objective)
    objective.zero_grad()
    checkpoint_blocks(student.blocks())
    again, kept_checkpointed = saved_bytes(lambda: objective(**dict(batch)))
    again.backward()
    assert torch.equal(again, loss)
    assert kept_checkpointed < 0.7 * kept  # the blocks' insides are recomputed, not kept
    checkpointed = grads(objective)
    assert checkpointed.keys() == plain.keys()
    for name in plain:
        assert torch.allclose(checkpointed[name], plain[name], rtol=1e-5, atol=1e-7), name


@pytest.mark.parametrize("kind", ["af3", "af2"])
def test_every_block_is_its_own_fsdp_unit(af3_folder, af2_folder, kind):
    from torch.distributed.fsdp import FSDPModule

    student = af3(af3_folder) if kind == "af3" else af2(af2_folder)
    group = join("cpu", sharded=True)
    try:
        blocks = student.blocks()
        names = {id(m): n for n, m in student.model.named_modules()}
        assert len(blocks) == len({id(b) for b in blocks}) >= 4
        model = spread(Objective(student.model, student, 0), blocks, "fsdp", False, False, group)
        assert isinstance(model, FSDPModule)
        assert [names[id(b)] for b in blocks if not isinstance(b, FSDPModule)] == []
        layers = [n for n, m in student.model.named_modules() if isinstance(m, torch.nn.ModuleList)
                  and n.endswith(("layers", "layer_stack", "cross_attn", "blocks")) and n != "clap.layers"]
        assert len(layers) == (2 if kind == "af3" else 6)
        for listed in layers:  # every transformer layer list is covered (for AF2 each Swin stage's blocks)
            assert all(isinstance(m, FSDPModule) for m in student.model.get_submodule(listed)), listed
    finally:
        group.close()


def with_dropout(folder, to):
    """A copy of the AF3 at ``folder`` whose attention and audio layers drop activations: a run that draws."""
    import json
    import shutil

    shutil.copytree(folder, to)
    config = json.loads((to / "config.json").read_text())
    config["text_config"]["attention_dropout"] = 0.2
    config["audio_config"]["dropout"] = config["audio_config"]["attention_dropout"] = 0.2
    (to / "config.json").write_text(json.dumps(config))
    return to


def metric(out, key):
    import json

    return [json.loads(line)[key] for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_a_killed_sharded_training_resumes_with_the_same_loss_sequence(af3_folder, tones, tmp_path):
    """With dropout and a cosine schedule: the random generators and the scheduler are restored too."""
    c = config(with_dropout(af3_folder, tmp_path / "af3"), tones, strategy="fsdp", activation_checkpointing=True,
               loss_chunk=16, max_steps=4, num_workers=0)
    whole = Af3Trainer(c).train(tones, tmp_path / "whole", Log())
    assert whole["steps"] == 4
    child = multiprocessing.get_context("spawn").Process(  # killed (SIGKILL) after step 3; step 2 was saved
        target=Af3Trainer(c).train, args=(tones, tmp_path / "cut", Log(kill_at=3)))
    child.start()
    child.join(180)
    assert child.exitcode == -signal.SIGKILL
    log = Log()
    Af3Trainer(c).train(tones, tmp_path / "cut", log)
    assert [e["step"] for e in log.events if e["event"] == "resuming training"] == [2]
    assert len(losses(tmp_path / "cut")) == 4
    assert np.allclose(losses(tmp_path / "cut"), losses(tmp_path / "whole"), rtol=1e-6)
    assert metric(tmp_path / "cut", "lr") == metric(tmp_path / "whole", "lr")
    from safetensors.torch import load_file

    a, b = load_file(tmp_path / "whole/final/model.safetensors"), load_file(tmp_path / "cut/final/model.safetensors")
    assert all(torch.allclose(a[k], b[k], rtol=1e-6, atol=1e-8) for k in a)
