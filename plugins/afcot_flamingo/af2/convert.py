"""Convert NVIDIA's released AF2 layout into our ``save_pretrained`` folder (``config.json``, ``model.safetensors``,
tokenizer files).

The release is three pieces, loaded in this order (later pieces override earlier ones, as the released code does):

1. the base LM folder (``Qwen/Qwen2.5-3B``: ``config.json``, tokenizer, ``*.safetensors``): the frozen decoder;
2. the AF-CLAP checkpoint (``clap_ckpt/epoch_16.pt``, a ``state_dict`` whose ``module.audio_branch.*`` entries are
   the encoder), read with ``torch.load(weights_only=True)``: nothing is unpickled beyond tensors;
3. the AF2 checkpoint: chunked safetensors named by ``safe_ckpt/metadata.json`` (the trainable parts: CLAP,
   ``audio_transformer_clap``, the gated cross-attention, the embeddings; any LM weights it holds override 1).

Names are mapped from the released module tree (``clap.nvclap``/``clap.afclap``, ``audio_transformer_clap``,
``lang_encoder.model.layers.N.{gated_cross_attn_layer_sound,decoder_layer}`` and their aliases
``lang_encoder.{gated_cross_attn_layers_sound,old_decoder_blocks}.N``) onto ours. Buffers that are recomputed
(rotary frequencies, Swin position indices and shift masks) and the encoder parts AF2 never runs (its own STFT and
mel bank, the classification head) are dropped by name; any other name is unexpected. A key nobody provides is
missing. Either stops the conversion with the full list.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from afcot_core.api import BadInput
from afcot_flamingo.af2.config import Af2Config

#: released encoder parts that AF2's forward never uses, and recomputed buffers
_UNUSED = re.compile(r"^(spectrogram_extractor|logmel_extractor|tscam_conv|head)\.|(relative_position_index|attn_mask"
                     r"|inv_freq)$")
_WRAPPERS = re.compile(r"(_fsdp_wrapped_module|_checkpoint_wrapped_module|_orig_mod)\.")
_RULES = [
    (re.compile(r"^clap\.(?:nvclap|afclap)\.(.+)$"), r"clap.\1"),
    (re.compile(r"^audio_transformer_clap\.(.+)$"), r"audio_transformer.\1"),
    (re.compile(r"^lang_encoder\.model\.layers\.(\d+)\.gated_cross_attn_layer_sound\.(.+)$"), r"cross_attn.\1.\2"),
    (re.compile(r"^lang_encoder\.gated_cross_attn_layers_sound\.(\d+)\.(.+)$"), r"cross_attn.\1.\2"),
    (re.compile(r"^lang_encoder\.model\.layers\.(\d+)\.decoder_layer\.(.+)$"), r"llm.model.layers.\1.\2"),
    (re.compile(r"^lang_encoder\.old_decoder_blocks\.(\d+)\.(.+)$"), r"llm.model.layers.\1.\2"),
    (re.compile(r"^lang_encoder\.(.+)$"), r"llm.\1"),
]


def our_name(official: str) -> str | None:
    """Our parameter name for a released one; None for a dropped (unused or recomputed) entry.

    Raises KeyError for a name outside the released model.
    """
    name = _WRAPPERS.sub("", official)
    name = name.removeprefix("module.")
    for pattern, target in _RULES:
        if pattern.match(name):
            ours = pattern.sub(target, name)
            inner = ours.split(".", 1)[1]
            if _UNUSED.search(inner):
                return None
            return ours
    raise KeyError(official)


def _map(tensors: dict[str, Any], source: Path, into: dict[str, Any], unexpected: list[str]) -> None:
    for name, tensor in tensors.items():
        try:
            ours = our_name(name)
        except KeyError:
            unexpected.append(f"{name} (in {source})")
            continue
        if ours is not None:
            into[ours] = tensor


def read_clap_checkpoint(path: Path) -> dict[str, Any]:
    """The encoder entries of an AF-CLAP ``.pt`` checkpoint, under the released ``clap.nvclap.`` names."""
    import pickle

    import torch

    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError) as exc:
        raise BadInput(f"{path}: not a tensors-only checkpoint; it is not unpickled ({str(exc).splitlines()[0]})"
                       ) from None
    state = saved.get("state_dict", saved) if isinstance(saved, dict) else None
    if not isinstance(state, dict):
        raise BadInput(f"{path}: no 'state_dict' mapping in this checkpoint")
    prefix = "module.audio_branch."
    return {"clap.nvclap." + k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}


def read_chunked(folder: Path) -> dict[str, Any]:
    """Every tensor of ``metadata.json``'s safetensors chunks in ``folder`` (the released ``safe_ckpt``)."""
    from safetensors.torch import load_file

    meta_path = folder / "metadata.json"
    try:
        metadata = json.loads(meta_path.read_text())
    except (OSError, ValueError) as exc:
        raise BadInput(f"{meta_path}: unreadable ({exc})") from None
    tensors: dict[str, Any] = {}
    for chunk in metadata:
        path = folder / f"{chunk}.safetensors"
        if not path.is_file():
            raise BadInput(f"{meta_path}: names chunk '{chunk}', but {path} is not there")
        tensors.update(load_file(str(path)))
    return tensors


def _read_llm(folder: Path) -> dict[str, Any]:
    from safetensors.torch import load_file

    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise BadInput(f"{folder}: no *.safetensors weights of the base LM")
    tensors: dict[str, Any] = {}
    for path in files:
        tensors.update({f"lang_encoder.{k}": v for k, v in load_file(str(path)).items()})
    return tensors


def _fit_rows(tensor: Any, rows: int) -> Any:
    """The base LM's embedding cut or grown (new rows: the mean row) to ``rows``, as a token resize does."""
    import torch

    if tensor.shape[0] >= rows:
        return tensor[:rows].clone()
    extra = tensor.float().mean(0, keepdim=True).expand(rows - tensor.shape[0], -1).to(tensor.dtype)
    return torch.cat([tensor, extra])


def converted_model(llm: Path, checkpoint: Path, clap: Path | None = None, architecture: Af2Config | None = None
                    ) -> tuple[Any, Any]:
    """Our AF2 model (float32, CPU) and its tokenizer, built from the base LM folder, the released ``safe_ckpt``
    folder (or the folder above it) and the CLAP file (default: ``clap_ckpt/epoch_16.pt`` beside ``safe_ckpt``).

    ``architecture`` gives the encoder, audio transformer and cross-attention sizes (default: the released ones).
    """
    import msgspec
    from transformers import AutoConfig, AutoTokenizer

    from afcot_flamingo.af2.model import Af2Model
    from afcot_flamingo.af2.text import add_af2_tokens
    from afcot_flamingo.af2.tiny import token_ids

    if (checkpoint / "safe_ckpt" / "metadata.json").is_file():
        checkpoint = checkpoint / "safe_ckpt"
    if clap is None and (checkpoint.parent / "clap_ckpt" / "epoch_16.pt").is_file():
        clap = checkpoint.parent / "clap_ckpt" / "epoch_16.pt"
    tokenizer = add_af2_tokens(AutoTokenizer.from_pretrained(llm))
    released = read_chunked(checkpoint)
    unexpected: list[str] = []
    state: dict[str, Any] = {}
    _map(_read_llm(llm), llm, state, unexpected)
    if clap is not None:
        _map(read_clap_checkpoint(clap), clap, state, unexpected)
    _map(released, checkpoint, state, unexpected)

    llm_config = AutoConfig.from_pretrained(llm).to_dict()
    embed = "llm.model.embed_tokens.weight"
    if embed not in state:
        raise BadInput(f"{llm}: the base LM has no '{embed.removeprefix('llm.')}'")
    vocab = len(tokenizer)
    for name in (embed, "llm.lm_head.weight"):
        if name in state and state[name].shape[0] != vocab:
            state[name] = _fit_rows(state[name], vocab)
    llm_config["vocab_size"] = vocab
    llm_config["pad_token_id"] = tokenizer.pad_token_id
    config = msgspec.structs.replace(architecture or Af2Config(), llm=llm_config, **token_ids(tokenizer))
    model = Af2Model(config)
    expected = model.state_dict()
    if llm_config.get("tie_word_embeddings"):
        state.setdefault("llm.lm_head.weight", state[embed])
    missing = sorted(set(expected) - set(state))
    unexpected += sorted(f"{k} (no such weight in the AF2 model)" for k in set(state) - set(expected))
    wrong = [f"{k}: {tuple(v.shape)} given, {tuple(expected[k].shape)} expected" for k, v in state.items()
             if k in expected and v.shape != expected[k].shape]
    if missing or unexpected or wrong:
        lines = [f"missing: {k}" for k in missing] + [f"unexpected: {k}" for k in unexpected] + wrong
        raise BadInput(f"cannot convert {checkpoint}: {len(missing)} missing, {len(unexpected)} unexpected, "
                       f"{len(wrong)} of the wrong shape:\n  " + "\n  ".join(lines))
    model.load_state_dict(state, strict=True)
    return model, tokenizer


def convert(llm: Path, checkpoint: Path, out: Path, clap: Path | None = None, dtype: str = "bfloat16",
            architecture: Af2Config | None = None) -> Path:
    """Write our AF2 folder to ``out`` (see :func:`converted_model` for the inputs)."""
    import torch

    model, tokenizer = converted_model(llm, checkpoint, clap, architecture)
    model.to(getattr(torch, dtype)).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out
