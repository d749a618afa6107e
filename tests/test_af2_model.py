"""The AF2 architecture on CPU with a tiny random config: windows, forward, loss, trainable set, audio dependence."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchaudio")

from afcot_flamingo.af2.features import pad_windows, windows  # noqa: E402
from afcot_flamingo.af2.model import Af2Model  # noqa: E402
from afcot_flamingo.af2.text import encode_training  # noqa: E402
from afcot_flamingo.af2.tiny import save_tiny_af2  # noqa: E402
from afcot_flamingo.training.loop import param_groups  # noqa: E402

from .test_af2_trainer import one_thread  # noqa: E402, F401  (one torch thread for these tiny models)

PAIRS = [("What is making the sound?", "<SUMMARY>a dog barks</SUMMARY>"), ("Is it loud?", "yes")]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return save_tiny_af2(tmp_path_factory.mktemp("af2") / "tiny")


@pytest.fixture()
def model(folder):
    return Af2Model.from_pretrained(folder)


@pytest.fixture(scope="module")
def tokenizer(folder):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder)


def _audio(model, seconds: list[float], seed: int = 0):
    rng = np.random.default_rng(seed)
    return pad_windows([windows(rng.standard_normal(int(16000 * s)), model.config.clap) for s in seconds])


def _open_gates(model, value: float = 0.5) -> None:
    with torch.no_grad():
        for block in model.cross_attn:
            block.attn_gate.fill_(value)
            block.ff_gate.fill_(value)


def test_windows_are_ten_seconds_without_overlap_and_capped(model):
    c = model.config.clap
    assert windows(np.ones(16000 * 5), c).shape == (1, 160000)
    assert windows(np.ones(16000 * 25), c).shape == (3, 160000)
    assert windows(np.ones(16000 * 200), c).shape == (12, 160000)
    clip = windows(np.linspace(0, 4, 16000 * 15), c)  # all-positive audio is scaled to [-1, 1]
    assert clip.min() == pytest.approx(-1.0, abs=1e-4) and clip.max() == pytest.approx(1.0, abs=1e-4)
    assert not clip[1, 80000:].any()  # the second window is zero-padded after 15 s


def test_five_and_twenty_five_seconds_train_one_step(model, tokenizer):
    audio, audio_mask = _audio(model, [5, 25])
    assert audio.shape[:2] == (2, 3) and audio_mask.tolist() == [[True, False, False], [True, True, True]]
    batch = encode_training(tokenizer, PAIRS, model.config.max_tokens)
    model.trainable_parameters()
    model.train()
    _open_gates(model)  # so the audio path gets gradients in this single step
    frozen = {n: p.detach().clone() for n, p in model.llm.named_parameters() if "layers." in n}
    embed = model.llm.get_input_embeddings().weight.detach().clone()
    trainable = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(param_groups(model, params, weight_decay=0.1), lr=1e-3)  # as the training loop
    loss = model(batch["input_ids"], batch["attention_mask"], audio, audio_mask, labels=batch["labels"]).loss
    loss.backward()
    model.zero_frozen_rows()  # as the training loop, after every backward pass
    optimizer.step()
    assert torch.isfinite(loss)
    assert all(not p.requires_grad for n, p in model.llm.named_parameters() if "layers." in n)
    assert all(torch.equal(p, frozen[n]) for n, p in model.llm.named_parameters() if n in frozen)
    changed = {n for n, p in model.named_parameters() if n in trainable and not torch.equal(p, trainable[n])}
    for part in ("clap.patch_embed.proj", "clap.patch_embed.fusion_model", "clap.layers.2", "audio_transformer.",
                 "cross_attn.1.attn.to_kv"):
        assert any(n.startswith(part) for n in changed), part
    rows = (model.llm.get_input_embeddings().weight.detach() != embed).any(dim=1).nonzero().flatten().tolist()
    assert rows == sorted([model.config.media_token_id, model.config.eoc_token_id])


def test_labels_cover_only_the_output_and_its_end_tokens(tokenizer):
    batch = encode_training(tokenizer, PAIRS, 1024)
    row, labels = batch["input_ids"][1].tolist(), batch["labels"][1].tolist()
    learned = [t for t, lab in zip(row, labels, strict=True) if lab != -100]
    assert tokenizer.decode(learned) == "yes<|endofchunk|><|endoftext|>"
    prompt = tokenizer.decode(batch["input_ids"][0][batch["attention_mask"][0].bool()])
    assert prompt.startswith("<audio>what is making the sound?<SEP><summary>a dog barks")
    assert encode_training(tokenizer, PAIRS, 20)["kept"] == [1]  # the long sample does not fit


def test_output_depends_on_the_audio_of_its_own_clip_only(model, tokenizer):
    _open_gates(model)
    model.eval()
    batch = encode_training(tokenizer, PAIRS, 1024)
    audio, audio_mask = _audio(model, [5, 25])
    other = audio.clone()
    other[1] = torch.from_numpy(np.stack(_audio(model, [25], seed=7)[0][0].numpy()))
    with torch.no_grad():
        base = model(batch["input_ids"], batch["attention_mask"], audio, audio_mask).logits
        changed = model(batch["input_ids"], batch["attention_mask"], other, audio_mask).logits
    assert torch.allclose(base[0], changed[0], atol=1e-5)
    assert (base[1] - changed[1]).abs().max() > 1e-3


def test_gates_at_zero_give_the_language_models_own_logits(model, tokenizer):
    from transformers import AutoModelForCausalLM

    model.eval()
    assert all(not b.attn_gate.detach().any() and not b.ff_gate.detach().any() for b in model.cross_attn)
    plain = AutoModelForCausalLM.from_config(model.llm.config)
    plain.load_state_dict(model.llm.state_dict())
    plain.eval()
    batch = encode_training(tokenizer, PAIRS, 1024)
    audio, audio_mask = _audio(model, [5, 25])
    with torch.no_grad():
        ours = model(batch["input_ids"], batch["attention_mask"], audio, audio_mask).logits
        alone = plain(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    assert torch.allclose(ours, alone, atol=1e-6)


def test_bfloat16_forward_runs(model, tokenizer):
    model = model.to(torch.bfloat16).eval()
    _open_gates(model)
    batch = encode_training(tokenizer, PAIRS[1:], 1024)
    audio, audio_mask = _audio(model, [5])
    with torch.no_grad():
        logits = model(batch["input_ids"], batch["attention_mask"], audio, audio_mask).logits
    assert logits.dtype == torch.bfloat16 and torch.isfinite(logits.float()).all()


def test_released_training_randomness_is_on_in_training_only():
    """The released encoder trains with SpecAugment and stochastic depth; evaluation is deterministic."""
    from afcot_flamingo.af2.clap import AfClap
    from afcot_flamingo.af2.config import ClapConfig
    from afcot_flamingo.af2.features import log_mel

    config = ClapConfig(embed_dim=8, patch_size=8, depths=[2, 2, 2], num_heads=[1, 2, 2])
    assert config.spec_augment and config.drop_path_rate == 0.1
    clap = AfClap(config)
    mel = log_mel(torch.randn(2, 160000) * 0.1, config)
    clap.train()
    assert not torch.allclose(clap(mel), clap(mel))
    clap.eval()
    assert torch.equal(clap(mel), clap(mel))


def test_the_audio_transformer_knows_where_each_token_is():
    """Rotary positions: reordering the audio tokens is not just reordering the output."""
    from afcot_flamingo.af2.model import AudioTransformer

    torch.manual_seed(0)
    net = AudioTransformer(64, layers=2, heads=2, d_inner=32).eval()
    x, mask = torch.randn(1, 12, 64), torch.ones(1, 12, dtype=torch.bool)
    order = torch.randperm(12)
    with torch.no_grad():
        assert not torch.allclose(net(x[:, order], mask), net(x, mask)[:, order], atol=1e-4)
