"""AF2's text side: the added tokens and the lowercased ``<audio>{prompt}<SEP>{output}<|endofchunk|>{eos}`` format.

The loss covers only the output, ``<|endofchunk|>`` and the end-of-text token (the released training masks
everything up to and including ``<SEP>``).
"""

from __future__ import annotations

from typing import Any

from afcot_flamingo.training.student import IGNORE

MEDIA = "<audio>"
END_OF_CHUNK = "<|endofchunk|>"
PAD = "<|PAD_TOKEN|>"
SEP = "<SEP>"


def add_af2_tokens(tokenizer: Any) -> Any:
    """The released additions to the LM's tokenizer: ``<audio>``, ``<|endofchunk|>``, the pad token, ``<SEP>``."""
    tokenizer.add_tokens([MEDIA, END_OF_CHUNK, PAD], special_tokens=True)
    tokenizer.pad_token = PAD
    if tokenizer.sep_token is None:
        tokenizer.add_special_tokens({"sep_token": SEP})
    tokenizer.padding_side = "left"
    return tokenizer


def prompt_text(prompt: str, tokenizer: Any) -> str:
    return f"{MEDIA}{prompt.lower().strip()}{tokenizer.sep_token}"


def training_text(prompt: str, output: str, tokenizer: Any) -> str:
    """One training sample: the prompt and the output lowercased and stripped, as the released training writes it."""
    return f"{prompt_text(prompt, tokenizer)}{output.lower().strip()}{END_OF_CHUNK}{tokenizer.eos_token}"


def encode_training(tokenizer: Any, pairs: list[tuple[str, str]], max_tokens: int) -> dict[str, Any] | None:
    """``input_ids``, ``attention_mask``, ``labels`` (right-padded) and ``kept`` (indices into ``pairs``).

    A sample longer than ``max_tokens`` is left out (the released training masks a cut output entirely, so it
    would add nothing to the loss). None when no sample fits.
    """
    import torch

    rows = [tokenizer(training_text(p, o, tokenizer), add_special_tokens=False)["input_ids"] for p, o in pairs]
    kept = [i for i, row in enumerate(rows) if len(row) <= max_tokens]
    if not kept:
        return None
    sep = tokenizer.sep_token_id
    width = max(len(rows[i]) for i in kept)
    ids = torch.full((len(kept), width), tokenizer.pad_token_id, dtype=torch.long)
    labels = torch.full_like(ids, IGNORE)
    mask = torch.zeros_like(ids)
    for n, i in enumerate(kept):
        row = rows[i]
        start = row.index(sep) + 1
        ids[n, : len(row)] = torch.tensor(row)
        mask[n, : len(row)] = 1
        labels[n, start : len(row)] = torch.tensor(row[start:])
    return {"input_ids": ids, "attention_mask": mask, "labels": labels, "kept": kept}


def clean_output(tokenizer: Any, text: str) -> str:
    """Decoded text (special tokens kept) after its last ``<SEP>``, without end tokens and padding, lowercased
    (as the released inference)."""
    text = text.split(tokenizer.sep_token)[-1]
    for token in (tokenizer.eos_token, tokenizer.pad_token, END_OF_CHUNK):
        text = text.replace(token, "")
    return text.lower()
