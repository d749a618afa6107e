"""The official MMAU/MMAR matcher (spec/BENCHMARKS.md §1), reimplemented from its description.

A prediction is right when it contains every word token of the answer and no token that occurs
only in a wrong choice. Tokens are the set of ``\\b\\w+\\b`` matches (Python ``re``, Unicode) of
the ``str.lower()``-ed text. There is no letter parsing: a bare "A" is right only if the answer is "A".
"""

from __future__ import annotations

import re
from collections.abc import Sequence

_WORD = re.compile(r"\b\w+\b")


def tokens(text: str) -> frozenset[str]:
    """The set of lower-cased word tokens of ``text``."""
    return frozenset(_WORD.findall(text.lower()))


class Matcher:
    """The answer's tokens and the wrong-choice-only tokens of one item, computed once."""

    __slots__ = ("answer", "wrong")

    def __init__(self, answer: str, choices: Sequence[str]) -> None:
        if isinstance(choices, str):
            raise TypeError("choices must be a sequence of strings, not a string")
        self.answer = tokens(answer)
        wrong: set[str] = set()
        for choice in choices:
            t = tokens(choice)
            if t != self.answer:
                wrong |= t - self.answer
        self.wrong = frozenset(wrong)

    def __call__(self, prediction: str) -> bool:
        found = tokens(prediction)
        return bool(found) and self.answer <= found and found.isdisjoint(self.wrong)


def string_match(answer: str, prediction: str, choices: Sequence[str]) -> bool:
    """The official result for one item (``prediction`` must be a ``str``)."""
    return Matcher(answer, choices)(prediction)
