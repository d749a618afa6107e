"""Registers the ``min-reasoning-words`` validator."""

from __future__ import annotations

import msgspec

from afcot_core.api import CoT, Evidence, Item, Validator, hookimpl


class MinWordsConfig(msgspec.Struct, forbid_unknown_fields=True):
    words: int = 12


class MinReasoningWords(Validator):
    """Rejects a composed CoT whose REASONING has fewer than ``words`` words."""

    name = "min-reasoning-words"
    stages = ("final",)

    def __init__(self, config: MinWordsConfig) -> None:
        self.words = config.words

    def check(self, item: Item, evidence: Evidence, cot: CoT | None) -> str | None:
        count = len(cot.reasoning.split()) if cot else 0
        return None if count >= self.words else f"reasoning has {count} words, fewer than {self.words}"


@hookimpl
def register_validators(register):
    register(MinReasoningWords.name, MinReasoningWords, MinWordsConfig, "REASONING of at least N words")
