"""The ``vllm`` backend of the Qwen teachers: vLLM's offline engine in this process.

The micro-batcher hands each batch to ``LLM.generate`` with one ``SamplingParams`` per request (its
own seed). Prompts are the same text the transformers backend builds (:mod:`afcot_qwen.prompts`), so
greedy replies match it token for token on the same weights; Omni audio goes as ``multi_modal_data``
at 16 kHz, and vLLM expands the single ``<|AUDIO|>`` placeholder to the clip's length.
"""

from __future__ import annotations

from typing import Any

from afcot_core.teacher import Request, Teacher
from afcot_qwen.config import QwenLlmConfig, QwenOmniConfig
from afcot_qwen.hf import weights_folder
from afcot_qwen.prompts import SAMPLE_RATE, after_think, clip_wave, omni_prompt, qwen3_prompt, request_seeds


class _VllmTeacher(Teacher):
    """One vLLM engine on the configured weights, sized by ``tensor_parallel_size`` and ``gpu_memory_utilization``."""

    def __init__(self, config: QwenLlmConfig | QwenOmniConfig, **engine: Any) -> None:
        from vllm import LLM

        super().__init__(config.batching, config)
        self.config = config
        self.model = config.model
        self.engine = LLM(model=str(weights_folder(config.model)), dtype=config.dtype, seed=config.seed,
                          tensor_parallel_size=config.tensor_parallel_size,
                          gpu_memory_utilization=config.gpu_memory_utilization, **engine)
        self.tok = self.engine.get_tokenizer()

    def sampling(self, requests: list[Request]) -> list[Any]:
        """One ``SamplingParams`` per request: the config's settings with the request's own seed."""
        from vllm import SamplingParams

        c = self.config
        if c.temperature == 0:
            return [SamplingParams(temperature=0.0, max_tokens=c.max_new_tokens, skip_special_tokens=False)
                    for _ in requests]
        return [SamplingParams(temperature=c.temperature, top_p=c.top_p, top_k=c.top_k or -1, seed=seed,
                               max_tokens=c.max_new_tokens, skip_special_tokens=False)
                for seed in request_seeds(requests, c.seed)]

    def _run(self, prompts: list[dict[str, Any]], requests: list[Request], think_end: int | None) -> list[str]:
        outputs = self.engine.generate(prompts, self.sampling(requests), use_tqdm=False)
        replies = []
        for out in outputs:
            ids = list(out.outputs[0].token_ids)
            if think_end is not None:
                ids = after_think(ids, think_end)
            replies.append(self.tok.decode(ids, skip_special_tokens=True).strip())
        return replies


class VllmQwenLlm(_VllmTeacher):
    """Qwen3 on vLLM; the reply is the text after the last ``</think>``."""

    role = "llm"

    def __init__(self, config: QwenLlmConfig) -> None:
        super().__init__(config)
        self.think_end = self.tok.convert_tokens_to_ids("</think>")

    def generate(self, requests: list[Request]) -> list[str]:
        assert isinstance(self.config, QwenLlmConfig)
        prompts = [{"prompt": qwen3_prompt(self.tok, r, self.config.enable_thinking)} for r in requests]
        return self._run(prompts, requests, self.think_end)


class VllmQwenOmni(_VllmTeacher):
    """The Omni thinker on vLLM: system prompt, then the clip (as multi-modal data) and the text."""

    role = "alm"

    def __init__(self, config: QwenOmniConfig) -> None:
        super().__init__(config, limit_mm_per_prompt={"audio": 1})

    def generate(self, requests: list[Request]) -> list[str]:
        assert isinstance(self.config, QwenOmniConfig)
        prompts: list[dict[str, Any]] = []
        for r in requests:
            prompt: dict[str, Any] = {"prompt": omni_prompt(self.config.system_prompt, r.prompt,
                                                            1 if r.audio is not None else 0, r.prefix)}
            if r.audio is not None:
                prompt["multi_modal_data"] = {"audio": (clip_wave(r), SAMPLE_RATE)}
            prompts.append(prompt)
        return self._run(prompts, requests, None)
