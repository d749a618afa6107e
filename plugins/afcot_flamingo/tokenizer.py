"""A small byte-level BPE tokenizer trained on a run's own corpus (the ``tokenizers`` library).

The miniature students learn in minutes when a CoT target is ~100 tokens rather than ~900 bytes. The chat
template's special tokens (``<|im_start|>``, ``<sound>``, ...) are added tokens, matched before any merge, and every
newline is its own pre-token, so ``<|im_start|>assistant\\n`` encodes to the same ids alone and in context (label
masking looks for it). Byte-level: any text round-trips through ``decode``. Saved with the checkpoint and loaded
like any HF tokenizer (``AutoProcessor`` / ``AutoTokenizer``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from afcot_core.api import BadInput, inline_prompt, iter_samples, options_of, plain_answer
from afcot_flamingo.tiny import CHATML, SPECIALS
from afcot_flamingo.training.data import CAPTION_PROMPT

PAD = "<|endoftext|>"


def train_bpe(texts: Iterable[str], vocab_size: int = 1000) -> Any:
    """A ``PreTrainedTokenizerFast``: byte-level BPE of ``vocab_size`` tokens trained on ``texts``, Qwen's specials."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex("\n"), behavior="isolated"),  # merges never cross a line break
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),  # nor a word boundary
    ])
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[PAD, *SPECIALS], show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    core.train_from_iterator(texts, trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=core, pad_token=PAD, eos_token="<|im_end|>",
                                  additional_special_tokens=SPECIALS, chat_template=CHATML)
    return tok


def shard_texts(folders: Iterable[Path]) -> Iterator[str]:
    """What a student is trained on in the shards of ``folders``: CoT and plain prompts, targets and chat headers."""
    for folder in folders:
        for shard in sorted(Path(folder).glob("shard-*.tar")):
            for _, parts in iter_samples(shard):
                item = json.loads(parts["json"])["item"]
                options = options_of(item.get("choices"), item["answer"])
                yield "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
                yield inline_prompt(item["question"], options, True)
                yield inline_prompt(item["question"], options, False)
                yield CAPTION_PROMPT
                yield "<|im_end|>\n<|im_start|>assistant\n"
                if "txt" in parts:
                    yield parts["txt"].decode("utf-8")
                yield plain_answer(item.get("choices"), item["answer"], lettered=True)
                yield "\n" + plain_answer(item.get("choices"), item["answer"])  # as a target: a word at a line's start


def corpus_tokenizer(folders: list[Path], vocab_size: int = 1000) -> Any:
    """A BPE tokenizer trained on the shards in ``folders``; :class:`BadInput` when they hold none."""
    if not any(next(Path(f).glob("shard-*.tar"), None) for f in folders):
        where = ", ".join(map(str, folders))
        raise BadInput(f"[train] tokenizer = \"bpe\" trains on the run's shards; none in {where}")
    return train_bpe(shard_texts(folders), vocab_size)
