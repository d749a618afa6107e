"""A tiny random-weight Audio Flamingo 3, built from a config and saved like a real checkpoint.

Used by the quickstart (``model = "random:tiny"``) and the tests: the same ``from_pretrained``,
processor, training and ``generate`` code runs as on ``nvidia/audio-flamingo-3-hf``, with no weights
to download. The tokenizer is the real Qwen2 byte-level BPE code with a 256-symbol vocabulary, or a small BPE
trained on the run's corpus (:mod:`afcot_flamingo.tokenizer`) for the ``small`` and ``base`` sizes that learn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

CHATML = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' }}"
          "{% if message['content'] is string %}{{ message['content'] }}{% else %}{% for c in message['content'] %}"
          "{% if c['type'] == 'text' %}{{ c['text'] }}{% elif c['type'] == 'audio' %}"
          "{{ '<|audio_bos|><|AUDIO|><|audio_eos|>' }}{% endif %}{% endfor %}{% endif %}{{ '<|im_end|>\\n' }}"
          "{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
          "{% if enable_thinking is defined and not enable_thinking %}{{ '<think>\\n\\n</think>\\n\\n' }}{% endif %}"
          "{% endif %}")
SPECIALS = ["<|im_start|>", "<|im_end|>", "<|AUDIO|>", "<|audio_bos|>", "<|audio_eos|>", "<|IMAGE|>", "<|VIDEO|>",
            "<|vision_bos|>", "<|vision_eos|>", "<sound>", "<think>", "</think>"]


def _byte_symbols() -> dict[int, str]:
    printable = [*range(ord("!"), ord("~") + 1), *range(0xA1, 0xAD), *range(0xAE, 0x100)]
    extra = [b for b in range(256) if b not in printable]
    return {**{b: chr(b) for b in printable}, **{b: chr(256 + i) for i, b in enumerate(extra)}}


def byte_tokenizer():
    """The real Qwen2 tokenizer code with a 256-symbol byte vocabulary and Qwen's special tokens."""
    from transformers import Qwen2Tokenizer

    symbols = _byte_symbols()
    vocab = {"<|endoftext|>": 0, **{symbols[b]: b + 1 for b in range(256)}}
    tok = Qwen2Tokenizer(vocab=vocab, merges=[], chat_template=CHATML)
    tok.add_special_tokens({"additional_special_tokens": SPECIALS})
    tok.pad_token = "<|endoftext|>"
    return tok


def whisper_features(chunk_length: int = 30):
    from transformers import WhisperFeatureExtractor

    return WhisperFeatureExtractor(feature_size=128, sampling_rate=16000, hop_length=160, chunk_length=chunk_length,
                                   n_fft=400, padding_value=0.0, return_attention_mask=True)


AF3_TEMPLATE = ("{% if messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a helpful assistant."
                "<|im_end|>\\n' }}{% endif %}{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' }}"
                "{% if m['content'] is string %}{{ m['content'] }}{% else %}"
                "{% for c in m['content'] %}{% if c['type'] == 'audio' %}{{ '<sound>' }}{% endif %}{% endfor %}"
                "{% for c in m['content'] %}{% if c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}"
                "{% endif %}{{ '<|im_end|>\\n' }}{% endfor %}"
                "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")


#: model sizes by name: audio encoder and language model widths and depths, audio window in seconds
SIZES = {
    # the tests' and quickstart's student: 5-s windows (the real one hears 30 s), 125 audio tokens per window
    "tiny": dict(audio=(32, 2, 4, 64), text=(64, 2, 4, 2, 128), window_s=5),
    # miniature students that learn in minutes on a CPU (with a small corpus tokenizer): about 0.8 M and 3 M
    "small": dict(audio=(64, 2, 4, 256), text=(128, 2, 4, 2, 512), window_s=5),
    "base": dict(audio=(128, 2, 4, 512), text=(256, 3, 4, 2, 1024), window_s=5),
    # a mid-size random AF3 for GPU checks (about 0.3 B parameters), real 30-s windows
    "mid": dict(audio=(512, 8, 8, 2048), text=(1024, 12, 16, 4, 2816), window_s=30),
}


def af3_config(size: str = "tiny", tok=None):
    """The ``AudioFlamingo3Config`` of a random AF3 of ``size`` (see :data:`SIZES`) for ``tok`` (default: bytes)."""
    from transformers import AudioFlamingo3Config

    tok = tok or byte_tokenizer()
    ids = tok.convert_tokens_to_ids
    spec = SIZES[size]
    a_hidden, a_layers, a_heads, a_inter = spec["audio"]
    t_hidden, t_layers, t_heads, t_kv, t_inter = spec["text"]
    return AudioFlamingo3Config(
        audio_config=dict(model_type="audioflamingo3_encoder", hidden_size=a_hidden, num_hidden_layers=a_layers,
                          num_attention_heads=a_heads, intermediate_size=a_inter, num_mel_bins=128,
                          max_source_positions=spec["window_s"] * 50),
        text_config=dict(model_type="qwen2", vocab_size=len(tok), hidden_size=t_hidden, intermediate_size=t_inter,
                         num_hidden_layers=t_layers, num_attention_heads=t_heads, num_key_value_heads=t_kv,
                         max_position_embeddings=8192, pad_token_id=tok.pad_token_id, eos_token_id=ids("<|im_end|>"),
                         tie_word_embeddings=False),
        audio_token_id=ids("<sound>"))


def save_af3(folder: Path, size: str = "tiny", tok: Any = None, seed: int = 0) -> Path:
    """A random-weight AF3 of ``size`` (see :data:`SIZES`) with ``tok`` (default: the byte tokenizer), saved like a
    checkpoint; the weights are drawn from ``seed``."""
    import torch
    from transformers import AudioFlamingo3ForConditionalGeneration, AudioFlamingo3Processor

    if size not in SIZES:
        raise ValueError(f"unknown random AF3 size '{size}'; sizes: {', '.join(SIZES)}")
    torch.manual_seed(seed)
    tok = tok or byte_tokenizer()
    spec = SIZES[size]
    AudioFlamingo3ForConditionalGeneration(af3_config(size, tok)).save_pretrained(folder)
    AudioFlamingo3Processor(feature_extractor=whisper_features(spec["window_s"]), tokenizer=tok,
                            chat_template=AF3_TEMPLATE, audio_token="<sound>").save_pretrained(folder)
    return folder


#: pre-trained miniature students shipped with afcot (``pretrained = "mini"``), made by recipes/pretrain_student.toml
STUDENTS = Path(__file__).parent / "students"


def builtin_student(config: Any, workdir: Path) -> Path:
    """The folder of the ``random:tiny`` student of an AF3 train config: a shipped pre-trained one
    (``pretrained``), or a random one of ``size`` with the byte or a corpus BPE ``tokenizer``, written to
    ``workdir/init`` once (the BPE trained on the run's shards: ``data``, the shard ``sources``, or
    ``{run}/generate``)."""
    from afcot_core.api import BadInput, expand

    if config.pretrained:
        path = STUDENTS / config.pretrained
        if not (path / "config.json").is_file():
            known = sorted(p.parent.name for p in STUDENTS.glob("*/config.json")) if STUDENTS.is_dir() else []
            raise BadInput(f"[train] no shipped student '{config.pretrained}'; shipped: {', '.join(known) or 'none'}")
        return path
    path = workdir / "init"
    if (path / "config.json").exists():
        return path
    tok = None
    if config.tokenizer == "bpe":
        from afcot_flamingo.tokenizer import corpus_tokenizer

        shards = [s for s in config.sources if s.kind == "shards"]
        folders = ([Path(expand(s.path)).expanduser() for s in shards] if config.sources
                   else [Path(expand(config.data)).expanduser() if config.data else workdir.parent / "generate"])
        tok = corpus_tokenizer(folders, config.vocab_size)
    save_af3(path, config.size, tok, seed=0 if config.size == "tiny" else config.seed)
    return path
