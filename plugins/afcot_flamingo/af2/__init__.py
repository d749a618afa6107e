"""Audio Flamingo 2: AF-CLAP (HTSAT with fusion) → rotary audio transformer → gated cross-attention in a Qwen2.5 LM.

Our own implementation of the architecture NVIDIA released (``nvidia/audio-flamingo-2`` and its Sound-CoT
finetune); :mod:`.convert` loads the released checkpoints into it. Nothing here imports torch at module import
except the model modules themselves.
"""
