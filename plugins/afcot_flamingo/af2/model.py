"""The AF2 model: AF-CLAP tokens of every window → a rotary audio transformer → gated cross-attention blocks that
run before every decoder layer of a transformers causal LM (Qwen2.5), attending to all of the clip's audio tokens.

The LM stays a stock transformers model (``self.llm``): the blocks are attached with forward pre-hooks on its
decoder layers, so its forward, loss, KV cache and ``generate`` are used unchanged. With the gates at zero (their
initial value) the model's logits are the LM's own.
"""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import msgspec
import torch
import torch.nn.functional as F
from torch import nn

from afcot_flamingo.af2.clap import AfClap
from afcot_flamingo.af2.config import CONFIG_FILE, WEIGHTS_FILE, Af2Config
from afcot_flamingo.af2.features import log_mel


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    first, second = x.chunk(2, dim=-1)
    return torch.cat((-second, first), dim=-1)


class SelfAttention(nn.Module):
    """Post-norm multi-head self-attention, rotary on the first channels of q and k."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads, self.dropout = heads, dropout
        self.w_qs = nn.Linear(dim, dim, bias=False)
        self.w_ks = nn.Linear(dim, dim, bias=False)
        self.w_vs = nn.Linear(dim, dim, bias=False)
        self.fc = nn.Linear(dim, dim, bias=False)
        self.layer_norm = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = (proj(x).view(b, n, self.heads, -1).transpose(1, 2) for proj in (self.w_qs, self.w_ks, self.w_vs))
        rot = cos.shape[-1]
        q, k = (torch.cat(((t[..., :rot].float() * cos + _rotate_half(t[..., :rot].float()) * sin).to(t.dtype),
                           t[..., rot:]), dim=-1) for t in (q, k))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None, None, :],
                                             dropout_p=self.dropout if self.training else 0.0)
        return self.layer_norm(self.fc(out.transpose(1, 2).reshape(b, n, d)) + x)


class FeedForward(nn.Module):
    """Post-norm ReLU feed-forward."""

    def __init__(self, dim: int, d_inner: int) -> None:
        super().__init__()
        self.w_1 = nn.Linear(dim, d_inner)
        self.w_2 = nn.Linear(d_inner, dim)
        self.layer_norm = nn.LayerNorm(dim, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer_norm(self.w_2(F.relu(self.w_1(x))) + x)


class EncoderLayer(nn.Module):
    def __init__(self, dim: int, heads: int, d_inner: int, attention_dropout: float) -> None:
        super().__init__()
        self.slf_attn = SelfAttention(dim, heads, attention_dropout)
        self.pos_ffn = FeedForward(dim, d_inner)

    def forward(self, x: torch.Tensor, mask: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        return self.pos_ffn(self.slf_attn(x, mask, cos, sin))


class AudioTransformer(nn.Module):
    """Self-attention over all windows' tokens of a clip (padded windows masked out), rotary positions."""

    inv_freq: torch.Tensor

    def __init__(self, dim: int, layers: int, heads: int, d_inner: int, attention_dropout: float = 0.0) -> None:
        super().__init__()
        head_dim = dim // heads
        #: rotary width: half a head, at least 32 channels (the released model: 128 of 256)
        self.rotary_dim = min(head_dim, max(head_dim // 2, 32))
        inv_freq = 1.0 / 4096 ** (torch.arange(0, self.rotary_dim, 2).float() / self.rotary_dim)
        self.register_buffer("inv_freq", inv_freq, persistent=False)
        self.layer_stack = nn.ModuleList(EncoderLayer(dim, heads, d_inner, attention_dropout) for _ in range(layers))
        self.layer_norm = nn.LayerNorm(dim, eps=1e-6)
        self.input_scale: float = dim**0.5

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        angles = torch.arange(x.shape[1], device=x.device, dtype=torch.float32)[:, None] * self.inv_freq.float()
        angles = torch.cat((angles, angles), dim=-1)
        cos, sin = angles.cos(), angles.sin()
        x = self.layer_norm(x * self.input_scale)
        for layer in self.layer_stack:
            x = layer(x, mask, cos, sin)
        return x


class MaskedCrossAttention(nn.Module):
    def __init__(self, dim: int, dim_audio: int, heads: int, dim_head: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm = nn.LayerNorm(dim)
        self.to_q = nn.Linear(dim, heads * dim_head, bias=False)
        self.to_kv = nn.Linear(dim_audio, 2 * heads * dim_head, bias=False)
        self.to_out = nn.Linear(heads * dim_head, dim, bias=False)

    def forward(self, x: torch.Tensor, media: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        q = self.to_q(self.norm(x)).view(b, n, self.heads, -1).transpose(1, 2)
        k, v = (t.view(b, media.shape[1], self.heads, -1).transpose(1, 2) for t in self.to_kv(media).chunk(2, -1))
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask[:, None, None, :])
        return self.to_out(out.transpose(1, 2).reshape(b, n, -1))


class GatedCrossAttentionBlock(nn.Module):
    """Cross-attention to the audio tokens and a feed-forward, each added through a tanh gate that starts at 0."""

    def __init__(self, dim: int, dim_audio: int, heads: int, dim_head: int, ff_mult: int) -> None:
        super().__init__()
        self.attn = MaskedCrossAttention(dim, dim_audio, heads, dim_head)
        self.attn_gate = nn.Parameter(torch.zeros(1))
        self.ff = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim * ff_mult, bias=False), nn.GELU(),
                                nn.Linear(dim * ff_mult, dim, bias=False))
        self.ff_gate = nn.Parameter(torch.zeros(1))

    def forward(self, x: torch.Tensor, media: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.attn(x, media, mask) * self.attn_gate.tanh() + x
        return self.ff(x) * self.ff_gate.tanh() + x


class Af2Model(nn.Module):
    """``forward(input_ids, attention_mask, audio, audio_mask, labels)``; ``generate(...)`` likewise."""

    def __init__(self, config: Af2Config) -> None:
        from transformers import AutoConfig, AutoModelForCausalLM

        super().__init__()
        self.config = config
        llm = dict(config.llm)
        self.clap = AfClap(config.clap)
        dim_audio = config.clap.out_dim
        at = config.audio_transformer
        self.audio_transformer = AudioTransformer(dim_audio, at.layers, at.heads, at.d_inner, at.attention_dropout)
        self.llm = AutoModelForCausalLM.from_config(AutoConfig.for_model(llm.pop("model_type"), **llm))
        ca = config.cross_attention
        hidden = self.llm.config.hidden_size
        layers = self.decoder_layers()
        self.cross_attn = nn.ModuleList(
            GatedCrossAttentionBlock(hidden, dim_audio, ca.heads, ca.dim_head, ca.ff_mult) for _ in layers)
        #: the audio tokens and mask the cross-attention attends to, per calling thread (forward and generate)
        self._media: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        for block, layer in zip(self.cross_attn, layers, strict=True):
            layer.register_forward_pre_hook(self._hook(block), with_kwargs=True)

    def decoder_layers(self) -> nn.ModuleList:
        return self.llm.model.layers

    def _hook(self, block: nn.Module) -> Any:
        def attend(_module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
            media = self._media.get(threading.get_ident())
            if media is None:
                raise RuntimeError("the AF2 LM ran without audio: call Af2Model.forward or generate")
            if args:
                return (block(args[0], *media), *args[1:]), kwargs
            kwargs["hidden_states"] = block(kwargs["hidden_states"], *media)
            return args, kwargs

        return attend

    def encode_audio(self, audio: torch.Tensor, audio_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``audio (B, W, samples)``, ``audio_mask (B, W)`` → audio tokens ``(B, W*64, D)`` and their mask."""
        b, w, _ = audio.shape
        mel = log_mel(audio.reshape(b * w, -1), self.config.clap).to(self.llm.dtype)
        keep = audio_mask.reshape(-1).bool()
        if self.training:  # per clip, as released: batch norm statistics of one clip's windows
            per_clip = []
            for clip in range(b):
                real = torch.nonzero(audio_mask[clip]).flatten()
                fuse = torch.zeros(len(real), dtype=torch.bool, device=audio.device)
                fuse[int(torch.randint(0, len(real), (1,)))] = True
                per_clip.append(self.clap(mel[clip * w + real], fuse))
            real_tokens = torch.cat(per_clip)
        else:
            real_tokens = self.clap(mel[keep])
        per_window = real_tokens.shape[1]
        full = real_tokens.new_zeros(b * w, per_window, real_tokens.shape[2])
        full = full.index_put((keep.nonzero().flatten(),), real_tokens)
        tokens = full.view(b, w * per_window, -1)
        mask = audio_mask.bool().repeat_interleave(per_window, dim=1)
        return self.audio_transformer(tokens, mask), mask

    @contextlib.contextmanager
    def _attending(self, audio: torch.Tensor, audio_mask: torch.Tensor) -> Iterator[None]:
        """The LM's cross-attention attends to this audio (in this thread) inside the block."""
        me = threading.get_ident()
        self._media[me] = self.encode_audio(audio, audio_mask)
        try:
            yield
        finally:
            del self._media[me]

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, audio: torch.Tensor,
                audio_mask: torch.Tensor, labels: torch.Tensor | None = None) -> Any:
        with self._attending(audio, audio_mask):
            return self.llm(input_ids=input_ids, attention_mask=attention_mask, labels=labels)

    def hidden_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, audio: torch.Tensor,
                      audio_mask: torch.Tensor) -> torch.Tensor:
        """The LM's last hidden states ``(B, T, D)`` (before its output layer), attending to the audio."""
        with self._attending(audio, audio_mask):
            return self.llm.model(input_ids=input_ids, attention_mask=attention_mask,
                                  use_cache=False).last_hidden_state

    @torch.no_grad()
    def generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, audio: torch.Tensor,
                 audio_mask: torch.Tensor, **kwargs: Any) -> torch.Tensor:
        with self._attending(audio, audio_mask):
            return self.llm.generate(input_ids=input_ids, attention_mask=attention_mask, **kwargs)

    def trainable_parameters(self) -> None:
        """The released trainable set: CLAP, audio transformer, cross-attention, and the input embeddings (of
        which only the ``<audio>`` and ``<|endofchunk|>`` rows learn: :meth:`zero_frozen_rows`); every LM block
        stays frozen."""
        self.requires_grad_(False)
        for part in (self.clap, self.audio_transformer, self.cross_attn):
            part.requires_grad_(True)
        self.llm.get_input_embeddings().weight.requires_grad_(True)

    def zero_frozen_rows(self) -> None:
        """Zero the input embeddings' gradient outside the ``<audio>`` and ``<|endofchunk|>`` rows (called after
        the backward pass; under FSDP on this rank's shard of the rows)."""
        grad = self.llm.get_input_embeddings().weight.grad
        if grad is None:
            return
        local, first = grad, 0
        if hasattr(grad, "to_local"):  # a DTensor sharded by rows
            local = grad.to_local()
            rows_per_rank = -(-grad.shape[0] // grad.device_mesh.size())
            first = grad.device_mesh.get_local_rank() * rows_per_rank
        keep = torch.zeros(local.shape[0], 1, dtype=local.dtype, device=local.device)
        for row in (self.config.media_token_id, self.config.eoc_token_id):
            if first <= row < first + local.shape[0]:
                keep[row - first] = 1
        local.mul_(keep)

    def param_groups(self, weight_decay: float) -> list[dict[str, Any]]:
        """Optimiser groups over the trainable parameters: weight decay on all but the input embeddings (their
        frozen rows must stay as they are)."""
        embed = self.llm.get_input_embeddings().weight
        rest = [p for p in self.parameters() if p.requires_grad and p is not embed]
        groups = [{"params": rest, "weight_decay": weight_decay}]
        return groups + ([{"params": [embed], "weight_decay": 0.0}] if embed.requires_grad else [])

    def save_pretrained(self, folder: Path) -> Path:
        from safetensors.torch import save_model

        folder.mkdir(parents=True, exist_ok=True)
        (folder / CONFIG_FILE).write_text(json.dumps(msgspec.to_builtins(self.config), indent=1))
        save_model(self, str(folder / WEIGHTS_FILE))
        return folder

    @classmethod
    def from_pretrained(cls, folder: Path, dtype: torch.dtype = torch.float32, device: str = "cpu") -> Af2Model:
        from safetensors.torch import load_model

        config = msgspec.json.decode((folder / CONFIG_FILE).read_bytes(), type=Af2Config)
        model = cls(config)
        load_model(model, str(folder / WEIGHTS_FILE), strict=True)
        return model.to(device=device, dtype=dtype)
