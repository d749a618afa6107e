"""Tiny random-weight models built from configs and saved to folders, like a real checkpoint (no hub)."""

from __future__ import annotations

from pathlib import Path

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


def whisper_features():
    from transformers import WhisperFeatureExtractor

    return WhisperFeatureExtractor(feature_size=128, sampling_rate=16000, hop_length=160, chunk_length=30, n_fft=400,
                                   padding_value=0.0, return_attention_mask=True)


def save_qwen3(folder: Path) -> Path:
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(0)
    tok = byte_tokenizer()
    config = Qwen3Config(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=4096,
                         tie_word_embeddings=True, eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"),
                         pad_token_id=tok.pad_token_id)
    Qwen3ForCausalLM(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def save_omni_thinker(folder: Path) -> Path:
    import torch
    from transformers import Qwen2_5OmniThinkerConfig, Qwen2_5OmniThinkerForConditionalGeneration

    torch.manual_seed(0)
    tok = byte_tokenizer()
    ids = tok.convert_tokens_to_ids
    config = Qwen2_5OmniThinkerConfig(
        audio_config=dict(d_model=32, encoder_layers=2, encoder_attention_heads=4, encoder_ffn_dim=64,
                          num_mel_bins=128, max_source_positions=1500, n_window=100, output_dim=64),
        vision_config=dict(depth=1, hidden_size=32, intermediate_size=32, num_heads=2, out_hidden_size=64,
                           fullatt_block_indexes=[0], patch_size=14, spatial_merge_size=2, temporal_patch_size=2),
        text_config=dict(vocab_size=len(tok), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=4096,
                         rope_parameters={"rope_type": "default", "rope_theta": 1e6, "mrope_section": [2, 3, 3]},
                         pad_token_id=tok.pad_token_id, eos_token_id=ids("<|im_end|>")),
        audio_token_index=ids("<|AUDIO|>"), image_token_index=ids("<|IMAGE|>"), video_token_index=ids("<|VIDEO|>"),
        audio_start_token_id=ids("<|audio_bos|>"), audio_end_token_id=ids("<|audio_eos|>"),
        vision_start_token_id=ids("<|vision_bos|>"), vision_end_token_id=ids("<|vision_eos|>"),
        user_token_id=ids("u"))
    Qwen2_5OmniThinkerForConditionalGeneration(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    whisper_features().save_pretrained(folder)
    return folder


AF3_TEMPLATE = ("{% if messages[0]['role'] != 'system' %}{{ '<|im_start|>system\\nYou are a helpful assistant."
                "<|im_end|>\\n' }}{% endif %}{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\\n' }}"
                "{% if m['content'] is string %}{{ m['content'] }}{% else %}"
                "{% for c in m['content'] %}{% if c['type'] == 'audio' %}{{ '<sound>' }}{% endif %}{% endfor %}"
                "{% for c in m['content'] %}{% if c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}"
                "{% endif %}{{ '<|im_end|>\\n' }}{% endfor %}"
                "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")


def save_af3(folder: Path) -> Path:
    import torch
    from transformers import AudioFlamingo3Config, AudioFlamingo3ForConditionalGeneration, AudioFlamingo3Processor

    torch.manual_seed(0)
    tok = byte_tokenizer()
    ids = tok.convert_tokens_to_ids
    config = AudioFlamingo3Config(
        audio_config=dict(model_type="audioflamingo3_encoder", hidden_size=32, num_hidden_layers=2,
                          num_attention_heads=4, intermediate_size=64, num_mel_bins=128, max_source_positions=1500),
        text_config=dict(model_type="qwen2", vocab_size=len(tok), hidden_size=64, intermediate_size=128,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=8192, pad_token_id=tok.pad_token_id, eos_token_id=ids("<|im_end|>"),
                         tie_word_embeddings=False),
        audio_token_id=ids("<sound>"))
    AudioFlamingo3ForConditionalGeneration(config).save_pretrained(folder)
    AudioFlamingo3Processor(feature_extractor=whisper_features(), tokenizer=tok, chat_template=AF3_TEMPLATE,
                            audio_token="<sound>").save_pretrained(folder)
    return folder
