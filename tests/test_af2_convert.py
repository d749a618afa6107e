"""Converting NVIDIA's released AF2 layout: a random state dict with the released names (a tiny config) converts
with nothing missing or unexpected, lands on the right weights, and round-trips through save/load."""

from __future__ import annotations

import json

import msgspec
import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("torchaudio")

from afcot_flamingo.af2.convert import convert, our_name  # noqa: E402
from afcot_flamingo.af2.features import pad_windows, windows  # noqa: E402
from afcot_flamingo.af2.model import Af2Model  # noqa: E402
from afcot_flamingo.af2.tiny import tiny_config, tiny_tokenizer, token_ids  # noqa: E402

from afcot_core.errors import BadInput  # noqa: E402

from .test_af2_trainer import one_thread  # noqa: E402, F401  (one torch thread for these tiny models)

BN = ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
WB = ["weight", "bias"]


def released_htsat_names(c) -> list[str]:
    """The HTSAT-with-aff_2d-fusion state dict names, written out from the released module tree."""
    names = [f"bn0.{s}" for s in BN]
    names += ["spectrogram_extractor.stft.conv_real.weight", "spectrogram_extractor.stft.conv_imag.weight",
              "logmel_extractor.melW"]
    names += [f"patch_embed.{m}.{s}" for m in ("proj", "norm", "mel_conv2d") for s in WB]
    for branch, convs, norms in (("local_att", (0, 3), (1, 4)), ("global_att", (1, 4), (2, 5))):
        names += [f"patch_embed.fusion_model.{branch}.{i}.{s}" for i in convs for s in WB]
        names += [f"patch_embed.fusion_model.{branch}.{i}.{s}" for i in norms for s in BN]
    side = c.spec_size // c.patch_size
    for stage, depth in enumerate(c.depths):
        for block in range(depth):
            p = f"layers.{stage}.blocks.{block}."
            names += [p + f"{m}.{s}" for m in ("norm1", "attn.qkv", "attn.proj", "norm2", "mlp.fc1", "mlp.fc2")
                      for s in WB]
            names += [p + "attn.relative_position_bias_table", p + "attn.relative_position_index"]
            if block % 2 and side // 2**stage > c.window_size:
                names.append(p + "attn_mask")
        if stage < len(c.depths) - 1:
            names += [f"layers.{stage}.downsample.reduction.weight", f"layers.{stage}.downsample.norm.weight",
                      f"layers.{stage}.downsample.norm.bias"]
    return names + [f"{m}.{s}" for m in ("norm", "tscam_conv", "head") for s in WB]


def released_audio_transformer_names(layers: int) -> list[str]:
    names = ["position_enc.inv_freq", "layer_norm.weight", "layer_norm.bias"]
    for i in range(layers):
        p = f"layer_stack.{i}."
        names += [p + f"slf_attn.{w}.weight" for w in ("w_qs", "w_ks", "w_vs", "fc")]
        names += [p + f"{m}.{s}" for m in ("slf_attn.layer_norm", "pos_ffn.w_1", "pos_ffn.w_2", "pos_ffn.layer_norm")
                  for s in WB]
    return names


CROSS = ["attn.norm.weight", "attn.norm.bias", "attn.to_q.weight", "attn.to_kv.weight", "attn.to_out.weight",
         "attn_gate", "ff.0.weight", "ff.0.bias", "ff.1.weight", "ff.3.weight", "ff_gate"]


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """A base LM folder, an AF-CLAP .pt and a chunked safe_ckpt, all random, named as NVIDIA ships them."""
    from afcot_flamingo.tiny import byte_tokenizer
    from safetensors.torch import save_file
    from transformers import AutoConfig, AutoModelForCausalLM

    root = tmp_path_factory.mktemp("release")
    torch.manual_seed(1)
    tok = tiny_tokenizer()
    arch = tiny_config(len(tok), **token_ids(tok))
    shapes = {k: v.shape for k, v in Af2Model(arch).state_dict().items()}

    base = dict(arch.llm, vocab_size=300)  # the base LM's embedding is padded beyond its tokenizer, like Qwen's
    llm_dir = root / "Qwen2.5-tiny"
    AutoModelForCausalLM.from_config(AutoConfig.for_model(base.pop("model_type"), **base)).save_pretrained(llm_dir)
    byte_tokenizer().save_pretrained(llm_dir)

    def rand(name: str):
        ours = our_name(name)
        if name.endswith("num_batches_tracked"):
            return torch.tensor(3)
        if name.endswith("running_var"):
            return torch.rand(shapes[ours]) + 0.5
        return torch.randn(shapes[ours] if ours else (3,))

    htsat = released_htsat_names(arch.clap)
    clap_dir = root / "clap_ckpt"
    clap_dir.mkdir()
    clap_state = {f"module.audio_branch.{n}": rand(f"clap.nvclap.{n}") for n in htsat}
    clap_state |= {"module.text_branch.embeddings.weight": torch.randn(4, 4), "module.logit_scale_a": torch.ones(())}
    torch.save({"epoch": 16, "state_dict": clap_state}, clap_dir / "epoch_16.pt")

    layers = arch.llm["num_hidden_layers"]
    released = {f"clap.nvclap.{n}": rand(f"clap.nvclap.{n}") for n in htsat[: len(htsat) // 2]}
    released |= {f"audio_transformer_clap.{n}": rand(f"audio_transformer_clap.{n}")
                 for n in released_audio_transformer_names(arch.audio_transformer.layers)}
    released |= {f"lang_encoder.model.layers.{i}.gated_cross_attn_layer_sound.{n}":
                 rand(f"lang_encoder.model.layers.{i}.gated_cross_attn_layer_sound.{n}")
                 for i in range(layers) for n in CROSS}
    released["lang_encoder.model.embed_tokens.weight"] = torch.randn(len(tok), arch.llm["hidden_size"])
    safe = root / "safe_ckpt"
    safe.mkdir()
    names = sorted(released)
    chunks = {"chunk_0": names[::2], "chunk_1": names[1::2]}
    for chunk, keys in chunks.items():
        save_file({k: released[k].contiguous() for k in keys}, str(safe / f"{chunk}.safetensors"))
    (safe / "metadata.json").write_text(json.dumps(chunks))
    return {"root": root, "llm": llm_dir, "arch": arch, "released": released, "clap": clap_state}


def _forward(model, seed: int = 0):
    tok = tiny_tokenizer()
    rng = np.random.default_rng(seed)
    audio, mask = pad_windows([windows(rng.standard_normal(16000 * 12), model.config.clap)])
    ids = tok("<audio>what is it?<SEP>a dog", return_tensors="pt", add_special_tokens=False)
    with torch.no_grad():
        return model.eval()(ids["input_ids"], ids["attention_mask"], audio, mask).logits


def test_released_names_convert_and_round_trip(release, tmp_path):
    out = convert(release["llm"], release["root"], tmp_path / "af2", dtype="float32", architecture=release["arch"])
    model = Af2Model.from_pretrained(out)
    ours = model.state_dict()
    released, clap = release["released"], release["clap"]
    # the released checkpoint wins over the CLAP file; the CLAP file fills what the checkpoint lacks
    assert torch.equal(ours["clap.bn0.running_mean"], released["clap.nvclap.bn0.running_mean"])
    assert torch.equal(ours["clap.norm.weight"], clap["module.audio_branch.norm.weight"])
    assert torch.equal(ours["cross_attn.1.ff_gate"], released["lang_encoder.model.layers.1.gated_cross_attn_layer_sound"
                                                              ".ff_gate"])
    assert torch.equal(ours["audio_transformer.layer_stack.1.pos_ffn.w_2.weight"],
                       released["audio_transformer_clap.layer_stack.1.pos_ffn.w_2.weight"])
    assert torch.equal(ours["llm.model.embed_tokens.weight"], released["lang_encoder.model.embed_tokens.weight"])
    assert torch.equal(ours["llm.lm_head.weight"], ours["llm.model.embed_tokens.weight"])  # tied, as Qwen2.5-3B
    first = _forward(model)
    again = Af2Model.from_pretrained(model.save_pretrained(tmp_path / "again"))
    assert torch.isfinite(first).all() and torch.equal(first, _forward(again))
    assert json.loads((out / "config.json").read_text())["clap"] == msgspec.to_builtins(release["arch"].clap)


def test_old_decoder_block_aliases_map_like_the_layer_names():
    assert our_name("lang_encoder.old_decoder_blocks.3.mlp.up_proj.weight") == "llm.model.layers.3.mlp.up_proj.weight"
    assert our_name("lang_encoder.model.layers.3.decoder_layer.mlp.up_proj.weight") == \
        "llm.model.layers.3.mlp.up_proj.weight"
    assert our_name("lang_encoder.gated_cross_attn_layers_sound.2.attn_gate") == "cross_attn.2.attn_gate"
    assert our_name("clap.afclap.layers.0.blocks.1.attn_mask") is None
    assert our_name("_fsdp_wrapped_module.clap.nvclap.bn0.weight") == "clap.bn0.weight"


def _rewrite(release, tmp_path, change):
    import shutil

    from safetensors.torch import load_file, save_file

    root = tmp_path / "rel"
    shutil.copytree(release["root"], root)
    path = root / "safe_ckpt" / "chunk_0.safetensors"
    tensors = load_file(str(path))
    change(tensors)
    save_file(tensors, str(path))
    return root


def test_a_missing_and_an_unexpected_key_are_both_listed(release, tmp_path):
    def change(tensors):
        del tensors[sorted(k for k in tensors if k.startswith("audio_transformer_clap.layer_stack.0"))[0]]
        tensors["lang_encoder.model.layers.0.gated_cross_attn_layer_sound.extra_gate"] = torch.zeros(1)

    root = _rewrite(release, tmp_path, change)
    with pytest.raises(BadInput) as err:
        convert(release["llm"], root, tmp_path / "af2", dtype="float32", architecture=release["arch"])
    message = str(err.value)
    assert "1 missing, 1 unexpected" in message
    assert "missing: audio_transformer.layer_stack.0." in message and "extra_gate" in message
    assert not (tmp_path / "af2").exists()


def test_a_checkpoint_that_needs_unpickling_code_is_refused(release, tmp_path):
    import argparse

    bad = tmp_path / "epoch_16.pt"  # training scripts often pickle their argparse options beside the weights
    torch.save({"state_dict": {}, "args": argparse.Namespace(lr=1e-4)}, bad)
    with pytest.raises(BadInput, match="not unpickled"):
        convert(release["llm"], release["root"], tmp_path / "af2", clap=bad, architecture=release["arch"])


def test_cli_refuses_a_folder_without_a_release_and_plan_says_how_to_fetch(tmp_path):
    from .conftest import ROOT, afcot

    result = afcot("af2-convert", str(tmp_path), str(tmp_path / "out"))
    assert result.returncode == 2 and "no safe_ckpt/metadata.json" in result.stderr
    plan = afcot("recipe", "plan", str(ROOT / "recipes" / "af2_sound_cot.toml"), env={"HF_HUB_CACHE": str(tmp_path)})
    text = plan.stdout + plan.stderr
    assert "hf download nvidia/audio-flamingo-2 " in text and "hf download Qwen/Qwen2.5-3B" in text
