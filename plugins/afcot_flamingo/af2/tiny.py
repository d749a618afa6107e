"""A tiny random-weight AF2 (same geometry, narrow widths), saved like a converted checkpoint.

Used by ``recipes/quickstart_af2.toml`` (``model = "random:tiny"``) and the tests: the same windows, mel, Swin,
fusion, audio transformer, gated cross-attention, Qwen2 LM and tokenizer code runs as for the released model.
"""

from __future__ import annotations

from pathlib import Path

from afcot_flamingo.af2.config import Af2Config, AudioTransformerConfig, ClapConfig, CrossAttentionConfig


def tiny_config(vocab_size: int, **ids: int) -> Af2Config:
    """The released geometry (10-s windows, 64 mels, 256 x 256 image, 64 tokens per window) at tiny widths, with 8 x 8
    patches and three Swin stages; no training-time randomness (stochastic depth, SpecAugment, dropout), so that
    runs on any number of processes compare exactly."""
    llm = dict(model_type="qwen2", vocab_size=vocab_size, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
               num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096, tie_word_embeddings=True,
               pad_token_id=ids["pad_token_id"], eos_token_id=ids["eos_token_id"], bos_token_id=None)
    return Af2Config(
        clap=ClapConfig(embed_dim=8, patch_size=8, depths=[2, 2, 2], num_heads=[1, 2, 2], drop_path_rate=0.0,
                        spec_augment=False),
        audio_transformer=AudioTransformerConfig(layers=2, heads=1, d_inner=64, attention_dropout=0.0),
        cross_attention=CrossAttentionConfig(heads=2, dim_head=16, ff_mult=2),
        llm=llm, max_tokens=1024, **ids)


def tiny_tokenizer():
    from afcot_flamingo.af2.text import add_af2_tokens
    from afcot_flamingo.tiny import byte_tokenizer

    return add_af2_tokens(byte_tokenizer())


def token_ids(tokenizer) -> dict[str, int]:
    from afcot_flamingo.af2.text import END_OF_CHUNK, MEDIA

    ids = tokenizer.convert_tokens_to_ids
    return dict(media_token_id=ids(MEDIA), eoc_token_id=ids(END_OF_CHUNK), sep_token_id=tokenizer.sep_token_id,
                pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)


def save_tiny_af2(folder: Path, seed: int = 0) -> Path:
    import torch

    from afcot_flamingo.af2.model import Af2Model

    torch.manual_seed(seed)
    tok = tiny_tokenizer()
    Af2Model(tiny_config(len(tok), **token_ids(tok))).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder
