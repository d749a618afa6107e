"""An AF2 model answering prompts as a ``teacher_alm`` (benchmarks, ``bench run``, the evaluate stage, teacher).

Audio is read as the released inference reads it: channel 0 of a multi-channel file, at 16 kHz
(:func:`afcot_flamingo.af2.features.release_wave`). Defaults are the released CoT inference: prompt
``<audio>{question lowercased}<SEP>``, sampling with top-k 30 and top-p 0.95, 1024 new tokens, the output
lowercased, and one regeneration when a CoT has ``<reasoning>`` but no ``</conclusion>`` (cut after the reasoning,
or at the last full stop of its first 512 characters, then continue from ``</REASONING>\\n<CONCLUSION>``).
Requests are answered in batches (left-padded); each row samples with its
request's own seed, so a reply does not depend on its batch neighbours.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from afcot_core.api import AfcotError, AudioError, Batching, Request, Sampling, Teacher, repair_prefix
from afcot_flamingo.af2.load import BASE_LLM, load, missing

SAMPLE_RATE = 16000


class Af2AnswerConfig(Sampling, forbid_unknown_fields=True, kw_only=True):
    """``model``: our AF2 folder, a release as NVIDIA ships it, or ``random:tiny``; ``{run}`` is this run's folder."""

    #: the AF2 model (``"{run}/train/final"`` for this run's own finetune)
    model: str = "nvidia/audio-flamingo-2-SoundCoT"
    #: the base LM a release is converted with (not needed for our own folders)
    llm: str = BASE_LLM
    #: where the model runs ("cuda", "cuda:1", "cpu")
    device: str = "cuda"
    #: weight precision (bfloat16 on GPUs; float32 on CPU)
    dtype: Literal["bfloat16", "float32"] = "bfloat16"
    #: the longest reply in tokens (the released CoT inference: 1024)
    max_new_tokens: int = 1024
    #: 0: greedy decoding (the released benchmark setting of the base AF2); otherwise sample at this temperature
    temperature: float = 1.0
    #: sample among the k most likely tokens
    top_k: int = 30
    #: sample within this probability mass
    top_p: float = 0.95
    #: seed of requests that carry none
    seed: int = 42
    #: regenerate once from the cut reasoning when a CoT lacks ``</conclusion>``
    repair: bool = True
    #: torch threads on CPU (0: torch's default; 1 is fastest for tiny models on a busy machine)
    cpu_threads: int = 0
    #: how concurrent requests are gathered into one ``generate`` batch
    batching: Batching = Batching(max_batch=8, max_wait_ms=20.0)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_new_tokens < 1:
            raise ValueError("max_new_tokens must be >= 1")


def preflight(config: Af2AnswerConfig) -> list[str]:
    return missing(config.model, config.llm)


class _RowSeededSampler:
    """Samples row ``i`` from the top-k / top-p filtered distribution with its own generator ``seeds[i]``."""

    def __init__(self, config: Af2AnswerConfig, seeds: list[int], device: Any) -> None:
        import torch
        from transformers import TemperatureLogitsWarper, TopKLogitsWarper, TopPLogitsWarper

        self.warpers: list[Any] = [TemperatureLogitsWarper(config.temperature)]
        self.warpers += [TopKLogitsWarper(config.top_k)] if config.top_k else []
        self.warpers += [TopPLogitsWarper(config.top_p)] if config.top_p < 1 else []
        self.generators = [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        for warp in self.warpers:
            scores = warp(input_ids, scores.float())
        probs = scores.softmax(-1)
        picked = [torch.multinomial(p, 1, generator=g) for p, g in zip(probs, self.generators, strict=True)]
        chosen = torch.full_like(scores, float("-inf"))
        return chosen.scatter(-1, torch.stack(picked), 0.0)


class Af2Answerer(Teacher):
    role = "alm"

    def __init__(self, config: Af2AnswerConfig) -> None:
        import torch

        super().__init__(config.batching, config)
        if config.device == "cpu" and config.cpu_threads:
            torch.set_num_threads(config.cpu_threads)
        self.config = config
        self.model = config.model
        self.net, self.tok = load(config.model, config.llm)
        self.net = self.net.to(device=config.device, dtype=getattr(torch, config.dtype)).eval()

    def _windows(self, request: Request) -> Any:
        """The request's audio read as the released AF2 inference does (channel 0 of a stereo file), windowed."""
        from afcot_flamingo.af2.features import release_wave, windows

        ref = request.audio
        if ref is None:
            raise AfcotError("the AF2 model needs audio for every request")
        source = ref.data if ref.data is not None else ref.path
        if source is None:
            raise AudioError("audio reference has neither a path nor data")
        if ref.data is None and not Path(source).is_file():
            raise AudioError(f"no such audio file: {source}")
        try:
            wave = release_wave(source, SAMPLE_RATE)
        except AudioError as exc:
            raise AudioError(f"{ref.path or 'in-memory audio'}: {exc}") from None
        return windows(wave, self.net.config.clap)

    def _run(self, texts: list[str], clips: list[Any], seeds: list[int]) -> list[str]:
        """The text generated after each prompt, special tokens kept."""
        import torch
        from transformers import LogitsProcessorList

        from afcot_flamingo.af2.features import pad_windows

        c, device = self.config, self.config.device
        enc = self.tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
        audio, audio_mask = pad_windows(clips)
        sampling: dict[str, Any] = {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
        if c.temperature > 0:
            sampling["logits_processor"] = LogitsProcessorList([_RowSeededSampler(c, seeds, device)])
        with torch.inference_mode():
            out = self.net.generate(enc["input_ids"].to(device), enc["attention_mask"].to(device),
                                    audio.to(device, self.net.llm.dtype), audio_mask.to(device),
                                    max_new_tokens=c.max_new_tokens, pad_token_id=self.tok.pad_token_id,
                                    eos_token_id=[self.tok.eos_token_id, self.net.config.eoc_token_id], **sampling)
        return self.tok.batch_decode(out[:, enc["input_ids"].shape[1]:], skip_special_tokens=False)

    def generate(self, requests: list[Request]) -> list[str]:
        from afcot_flamingo.af2.text import clean_output, prompt_text

        seeds = [self.config.seed if r.seed is None else r.seed for r in requests]
        clips = [self._windows(r) for r in requests]
        prompts = [prompt_text(r.prompt, self.tok) for r in requests]
        first = self._run([p + r.prefix for p, r in zip(prompts, requests, strict=True)], clips, seeds)
        replies = [clean_output(self.tok, self.tok.sep_token + text) for text in first]
        if not self.config.repair:
            return replies
        redo = {i: cut for i, r in enumerate(requests) if not r.prefix and (cut := repair_prefix(replies[i]))}
        if redo:
            order = list(redo)
            again = self._run([prompts[i] + redo[i] for i in order], [clips[i] for i in order],
                              [seeds[i] for i in order])
            for i, text in zip(order, again, strict=True):
                replies[i] = clean_output(self.tok, self.tok.sep_token + redo[i] + text)
        return replies
