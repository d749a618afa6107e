"""Requests/s of the qwen3 teacher on its transformers and vllm backends, same prompts, same random weights.

A random Qwen3 (mid-size by default: 8 layers of 1024, head_dim 128, ~0.2B parameters with the byte vocabulary) is
saved to a temporary folder; each backend answers the same N prompts through ``Teacher.ask`` (the micro-batcher
feeding the engine), greedy. Prints one line per backend and the share of identical greedy replies.

    python scripts/teacher_throughput.py [--requests 256] [--tokens 128] [--device cuda] [--size mid|tiny]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path

import msgspec

from afcot_core import plugins as loader

SIZES = {"mid": dict(hidden_size=1024, intermediate_size=3072, num_hidden_layers=8, num_attention_heads=8,
                     num_key_value_heads=4, head_dim=128),
         "tiny": dict(hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=2,
                      num_key_value_heads=1, head_dim=64)}


def save_qwen3(folder: Path, size: str) -> Path:
    import torch
    from afcot_flamingo.tiny import byte_tokenizer
    from transformers import Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(0)
    tok = byte_tokenizer()
    config = Qwen3Config(vocab_size=len(tok), max_position_embeddings=4096, tie_word_embeddings=True,
                         eos_token_id=tok.convert_tokens_to_ids("<|im_end|>"), pad_token_id=tok.pad_token_id,
                         **SIZES[size])
    Qwen3ForCausalLM(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def run(plugins, folder: Path, backend: str, args: argparse.Namespace, prompts: list[str]) -> list[str]:
    reg = plugins.registry("teacher_llm").get("qwen3")
    table = {"model": str(folder), "backend": backend, "device": args.device, "dtype": args.dtype,
             "max_new_tokens": args.tokens, "temperature": 0.0,
             "batching": {"max_batch": args.batch, "max_wait_ms": 20.0, "max_concurrency": 2}}
    if backend == "vllm":
        table["gpu_memory_utilization"] = args.memory
    teacher = reg.build(msgspec.convert(table, reg.config))
    teacher.generate(prompts_as_requests(prompts[:4]))  # warm-up

    async def ask_all() -> list[str]:
        return [r.text for r in await asyncio.gather(*(teacher.ask(p) for p in prompts))]

    start = time.perf_counter()
    replies = asyncio.run(ask_all())
    seconds = time.perf_counter() - start
    sizes = teacher.batch_sizes
    print(f"{backend}: {len(prompts) / seconds:.1f} requests/s ({len(prompts)} requests, {args.tokens} new tokens, "
          f"mean batch {sum(sizes) / max(1, len(sizes)):.1f}, {seconds:.1f} s)", flush=True)
    return replies


def prompts_as_requests(prompts: list[str]) -> list:
    from afcot_core.teacher import Request

    return [Request(p) for p in prompts]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=256)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", default="bfloat16")
    parser.add_argument("--size", choices=sorted(SIZES), default="mid")
    parser.add_argument("--memory", type=float, default=0.5, help="vllm gpu_memory_utilization")
    args = parser.parse_args()
    plugins = loader.load()
    prompts = [f"Question {i}: what makes a sound like {'abcdefgh'[i % 8] * (1 + i % 7)}?" for i in
               range(args.requests)]
    with tempfile.TemporaryDirectory() as tmp:
        folder = save_qwen3(Path(tmp) / "qwen3", args.size)
        hf = run(plugins, folder, "transformers", args, prompts)
        if importlib.util.find_spec("vllm") is None:
            print("vllm: not installed (pip install 'afcot[vllm]'), skipped")
            return 0
        vl = run(plugins, folder, "vllm", args, prompts)
    print(f"identical greedy replies: {sum(a == b for a, b in zip(hf, vl, strict=True))}/{len(prompts)} "
          f"({args.dtype}; kernels differ, so a few may diverge)")
    return 0


if __name__ == "__main__":  # vLLM spawns engine processes that import this module
    code = main()
    sys.stdout.flush()
    os._exit(code)  # vLLM's engine threads can keep the interpreter from exiting after the engines are gone
