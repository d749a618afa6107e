"""The train stage's memory plan: its per-block constants measured again, its static bytes against a real training's
tensors, and what `recipe plan` and `recipe run` say about the paper recipes."""

from __future__ import annotations

import json

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from afcot_flamingo.training.memory import (  # noqa: E402
    GIB,
    Setting,
    af3_anatomy,
    alternatives,
    decoder_bytes,
    encoder_bytes,
    estimate,
)

from .conftest import afcot  # noqa: E402


def kept_bytes(module, *args, **kwargs) -> int:
    """Bytes the autograd graph keeps for the backward pass of ``module(*args)``, the module's weights excluded."""
    weights = {p.untyped_storage().data_ptr() for p in module.parameters()}
    seen: dict[int, int] = {}

    def pack(t):
        ptr = t.untyped_storage().data_ptr()
        if ptr not in weights:
            seen[ptr] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        module(*args, **kwargs)
    return sum(seen.values())


@pytest.mark.parametrize("trained", [True, False])
@pytest.mark.parametrize(("h", "i", "heads", "kv_heads"), [(256, 704, 4, 2), (384, 1024, 6, 3)])
def test_a_decoder_layer_keeps_what_the_plan_counts(h, i, heads, kv_heads, trained):
    from transformers import Qwen2Config
    from transformers.models.qwen2.modeling_qwen2 import Qwen2DecoderLayer, Qwen2RotaryEmbedding

    c = Qwen2Config(hidden_size=h, intermediate_size=i, num_attention_heads=heads, num_key_value_heads=kv_heads,
                    attn_implementation="sdpa")
    layer = Qwen2DecoderLayer(c, 0).to(torch.bfloat16).requires_grad_(trained)
    tokens = 40
    x = torch.randn(1, tokens, h, dtype=torch.bfloat16, requires_grad=True)
    position = torch.arange(tokens)[None]
    rotary = Qwen2RotaryEmbedding(c)(x, position)
    head_dim = h // heads
    measured = kept_bytes(layer, x, attention_mask=None, position_embeddings=rotary, position_ids=position)
    assert measured == tokens * decoder_bytes(h, i, kv_heads * head_dim, heads, head_dim, trained)


@pytest.mark.parametrize(("d", "f", "heads"), [(256, 1024, 4), (320, 1280, 5)])
def test_an_audio_encoder_layer_keeps_what_the_plan_counts(d, f, heads):
    from transformers import AudioFlamingo3EncoderConfig
    from transformers.models.audioflamingo3.modeling_audioflamingo3 import AudioFlamingo3EncoderLayer

    layer = AudioFlamingo3EncoderLayer(AudioFlamingo3EncoderConfig(
        hidden_size=d, intermediate_size=f, num_attention_heads=heads, attn_implementation="sdpa")).to(torch.bfloat16)
    frames = 60
    x = torch.randn(1, frames, d, dtype=torch.bfloat16, requires_grad=True)
    assert kept_bytes(layer, x, attention_mask=None) == frames * encoder_bytes(d, f, heads)


def storage(tensors) -> int:
    return sum(t.untyped_storage().nbytes() for t in {t.untyped_storage().data_ptr(): t for t in tensors}.values())


def test_weights_gradients_and_optimiser_bytes_are_the_tensors_storage(tmp_path):
    """One real optimiser step of the tiny AF3 in fp32 on one process, audio tower frozen: the plan's static bytes
    equal the storage of its parameters, gradients and AdamW state."""
    from afcot_flamingo.af3 import Af3Student
    from afcot_flamingo.config import Af3TrainConfig
    from afcot_flamingo.tiny import af3_config, save_af3
    from afcot_flamingo.training.loss import Objective

    from .test_sharded_training import batch_of

    c = Af3TrainConfig(model=str(save_af3(tmp_path / "af3")), device="cpu", dtype="float32", freeze_audio_tower=True)
    student = Af3Student(c)
    student.build(c, tmp_path, "cpu", torch.float32)
    student.freeze(True, False)
    params = [p for p in student.model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=1e-3)
    Objective(student.model, student, 8)(**batch_of(student)).backward()
    optimizer.step()
    setting = Setting("ddp", False, 2, 64, 8, 1, 80, bf16=False)
    planned = estimate(af3_anatomy(af3_config(), c), setting)
    assert planned["weights"] == storage(student.model.parameters())
    assert planned["gradients"] == storage(p.grad for p in params)
    assert planned["optimiser"] == storage(v for s in optimizer.state.values() for k, v in s.items() if k != "step")
    sharded = estimate(af3_anatomy(af3_config(), c), Setting("fsdp", False, 2, 64, 8, 4, 80, bf16=False))
    assert sharded["optimiser"] == planned["optimiser"] / 4


def plan_lines(name, *sets):
    """The memory lines `afcot recipe plan NAME --stages train --set ...` prints (in this process)."""
    from afcot_core import recipe, runner
    from afcot_core.plugins import default

    text = runner.plan(runner.plan_document(recipe.load(name, default(), [a for a in sets if a != "--set"]), ["train"]))
    return [line.strip() for line in text.splitlines() if "train memory" in line]


def test_the_paper_recipes_fit_on_eight_80_gb_gpus_and_plain_ddp_does_not():
    assert plan_lines("af3_sound_cot") == [
        "train memory: 29.5 GiB per GPU (fsdp, 8 GPUs of 80 GiB, checkpointing on, 2 x 8192 tokens per GPU): fits"]
    (ddp,) = plan_lines("af3_sound_cot", "--set", 'train.strategy="ddp"')
    assert ddp.startswith("train memory: 179.2 GiB per GPU (ddp, 8 GPUs of 80 GiB") and "does not fit" in ddp
    assert 'nearest settings that fit: train.strategy = "fsdp"' in ddp
    (af2,) = plan_lines("af2_sound_cot")
    assert af2.endswith("8 x 1024 tokens per GPU): fits")
    (af2_ddp,) = plan_lines("af2_sound_cot", "--set", 'train.strategy="ddp"', "--set",
                            "train.activation_checkpointing=false")
    assert "(ddp, 8 GPUs of 80 GiB, checkpointing off" in af2_ddp and "does not fit" in af2_ddp
    (small,) = plan_lines("af3_sound_cot", "--set", "train.gpu_memory_gb=40")
    assert "8 GPUs of 40 GiB" in small and small.endswith(": fits")
    (one,) = plan_lines("af3_sound_cot", "--set", "train.gpus=1")
    assert "does not fit" in one and "train.cpu_offload = true" in one


def test_plan_json_carries_the_figures():
    result = afcot("recipe", "plan", "af3_sound_cot", "--stages", "train", "--json")
    doc = json.loads(result.stdout)
    assert result.returncode == (2 if doc["missing"] else 0), result.stderr  # figures printed, weights or not
    (memory,) = doc["estimates"]
    figures = memory["figures"]
    assert memory["ok"] and memory["where"] == "train" and 8.26e9 < figures["params"] < 8.28e9
    assert set(figures["gib"]) == {"weights", "gradients", "optimiser", "activations", "loss_peak", "overhead", "total"}
    assert figures["gib"]["total"] == pytest.approx(sum(v for k, v in figures["gib"].items() if k != "total"), abs=0.05)
    assert figures["gpus"] == 8 and figures["strategy"] == "fsdp" and figures["activation_checkpointing"] is True


def test_a_run_that_does_not_fit_is_refused_before_anything_loads(tmp_path):
    from .conftest import QUICKSTART

    out = tmp_path / "run"
    result = afcot("recipe", "run", str(QUICKSTART), "--out", str(out), "--quiet", "--set", 'train.device="cuda"',
                   "--set", "train.gpu_memory_gb=0.5", "--set", "train.gpus=1")
    assert result.returncode == 2
    assert "cannot start" in result.stderr and "[train] train memory:" in result.stderr
    assert "does not fit" in result.stderr and not out.exists()


def test_the_nearest_settings_change_as_little_as_possible():
    from afcot_flamingo.config import Af3TrainConfig, known_architecture
    from transformers import AudioFlamingo3Config

    anatomy = af3_anatomy(AudioFlamingo3Config(**known_architecture("nvidia/audio-flamingo-3-hf")), Af3TrainConfig())
    s = Setting("fsdp", False, 2, 8192, 1024, 8, 80, bf16=True)
    assert estimate(anatomy, s)["total"] > 80 * GIB  # activations of 28 + 32 layers, kept
    assert alternatives(anatomy, s)[0] == "train.activation_checkpointing = true"


def test_with_lora_the_plan_trains_what_peft_leaves_trainable(tmp_path):
    pytest.importorskip("peft")
    from afcot_flamingo.af3 import Af3Student
    from afcot_flamingo.config import Af3TrainConfig, LoraConfig
    from afcot_flamingo.tiny import af3_config, save_af3
    from afcot_flamingo.training.loop import apply_lora

    c = Af3TrainConfig(model=str(save_af3(tmp_path / "af3")), device="cpu", dtype="float32",
                       lora=LoraConfig(r=4, alpha=8))
    student = Af3Student(c)
    student.build(c, tmp_path, "cpu", torch.float32)
    student.freeze(False, False)
    trained = apply_lora(student.model, c.lora, student.lora_targets())
    assert af3_anatomy(af3_config(), c).trainable == sum(p.numel() for p in trained.parameters() if p.requires_grad)
