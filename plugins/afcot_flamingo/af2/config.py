"""The AF2 architecture config, saved as ``config.json`` next to the weights (defaults: the released model)."""

from __future__ import annotations

from typing import Any

import msgspec

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


class ClapConfig(msgspec.Struct, forbid_unknown_fields=True):
    """AF-CLAP: an HTSAT Swin transformer with ``aff_2d`` fusion over 10-s log-mel windows."""

    #: audio sample rate the encoder hears (Hz)
    sample_rate: int = 16000
    #: mel bins of the log-mel input
    mel_bins: int = 64
    #: lowest mel filter frequency (Hz)
    fmin: float = 50.0
    #: highest mel filter frequency (Hz)
    fmax: float = 8000.0
    #: STFT size (and window length) in samples
    n_fft: int = 1024
    #: STFT hop in samples
    hop: int = 160
    #: length of one encoder window in seconds (windows do not overlap)
    window_seconds: float = 10.0
    #: most windows per clip (longer audio is cut)
    max_windows: int = 12
    #: side of the square spectrogram image the Swin transformer sees
    spec_size: int = 256
    #: patch size and stride of the patch embedding
    patch_size: int = 4
    #: channels after the patch embedding (doubles at every stage)
    embed_dim: int = 256
    #: Swin blocks per stage
    depths: list[int] = msgspec.field(default_factory=lambda: [2, 2, 12, 2])
    #: attention heads per stage
    num_heads: list[int] = msgspec.field(default_factory=lambda: [4, 8, 16, 32])
    #: Swin attention window (tokens per side)
    window_size: int = 8
    #: MLP width as a multiple of the block width
    mlp_ratio: float = 4.0
    #: stochastic-depth rate at the deepest block (training only)
    drop_path_rate: float = 0.1
    #: in training, zero two random time stripes (up to 64 frames) and two mel stripes (up to 8 bins) per window
    spec_augment: bool = True

    @property
    def window_samples(self) -> int:
        return int(self.window_seconds * self.sample_rate)

    @property
    def out_dim(self) -> int:
        return self.embed_dim * 2 ** (len(self.depths) - 1)


class AudioTransformerConfig(msgspec.Struct, forbid_unknown_fields=True):
    """The transformer over all windows' CLAP tokens, with rotary positions."""

    #: encoder layers
    layers: int = 3
    #: attention heads
    heads: int = 8
    #: feed-forward width
    d_inner: int = 2048
    #: dropout on the attention weights (training only)
    attention_dropout: float = 0.1


class CrossAttentionConfig(msgspec.Struct, forbid_unknown_fields=True):
    """The gated cross-attention block placed before every decoder layer."""

    #: attention heads
    heads: int = 8
    #: width of one head
    dim_head: int = 64
    #: feed-forward width as a multiple of the LM width
    ff_mult: int = 4


class Af2Config(msgspec.Struct, forbid_unknown_fields=True):
    """A whole AF2 model: encoder, audio transformer, cross-attention and the LM's own transformers config."""

    #: AF-CLAP encoder settings
    clap: ClapConfig = msgspec.field(default_factory=ClapConfig)
    #: audio transformer settings
    audio_transformer: AudioTransformerConfig = msgspec.field(default_factory=AudioTransformerConfig)
    #: gated cross-attention settings
    cross_attention: CrossAttentionConfig = msgspec.field(default_factory=CrossAttentionConfig)
    #: the language model's transformers config (``Qwen2Config.to_dict()``)
    llm: dict[str, Any] = msgspec.field(default_factory=dict)
    #: id of ``<audio>``
    media_token_id: int = -1
    #: id of ``<|endofchunk|>``
    eoc_token_id: int = -1
    #: id of ``<SEP>``
    sep_token_id: int = -1
    #: id of ``<|PAD_TOKEN|>``
    pad_token_id: int = -1
    #: id of the LM's end-of-text token
    eos_token_id: int = -1
    #: longest token sequence in training and prompting (the released CoT config: 1024)
    max_tokens: int = 1024
