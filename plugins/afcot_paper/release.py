"""The released soundCoT code's own tests, for ``fidelity = "release"`` (AF_CoT_Train/alg_6*, alg_7*, alg_8*).

Each reproduces one expression of the release, quirks included; docs/algorithms.md lists where afcot's
default departs from them.
"""

from __future__ import annotations

from typing import Any, ClassVar

import msgspec

#: the values the release's gate rejects on (``in [0, False, '0', 'False', 'false']``); anything else passes
GATE_NO: tuple[Any, ...] = (0, False, "0", "False", "false")
#: the values the release's accept rule takes as a positive validation (``in [1, "1", True, "true", "True"]``)
VALIDATION_YES: tuple[Any, ...] = (1, "1", True, "true", "True")


def gate_says_no(value: Any) -> bool:
    """The release's gate test: a missing key (``msgspec.UNSET``) or one of :data:`GATE_NO` rejects."""
    return value is msgspec.UNSET or any(value == no for no in GATE_NO)


def validation_says_yes(value: Any) -> bool:
    """The release's validation test (Python ``in``: ``==`` per value, so 1.0 counts and "yes" does not)."""
    return any(value == yes for yes in VALIDATION_YES)


def remove_option(answer: str) -> str:
    """The released ``remove_option``: lower-case, and drop the first word when it holds ``(x)``, ``x.``, ``x)``
    or ``x:`` for a letter a-h anywhere in it (so "dog." loses its only word and every prediction ends with "")."""
    text = answer.lower()
    first = text.split(" ")[0]
    for letter in "abcdefgh":
        if any(p.format(letter) in first for p in ("({})", "{}.", "{})", "{}:")):
            return " ".join(text.split(" ")[1:])
    return text


def accepts(prediction: str, answer: str, validation: bool) -> bool:
    """The release's accept rule: ``prediction.lower().endswith(remove_option(answer))`` or the judge said yes."""
    return prediction.lower().endswith(remove_option(answer)) or validation


class Gate(msgspec.Struct):
    json_parse: ClassVar[str] = "release"
    require_step_by_step: Any = msgspec.UNSET
    sub_questions: Any = msgspec.UNSET


class Answer(msgspec.Struct):
    json_parse: ClassVar[str] = "release"
    answer: Any = msgspec.UNSET


class Validation(msgspec.Struct):
    json_parse: ClassVar[str] = "release"
    validation: Any = msgspec.UNSET


class Followup(msgspec.Struct):
    json_parse: ClassVar[str] = "release"
    answer: Any = msgspec.UNSET
    followup: Any = msgspec.UNSET


class Summary(msgspec.Struct):
    json_parse: ClassVar[str] = "release"
    summary: Any = msgspec.UNSET


class Reasoning(msgspec.Struct):
    json_parse: ClassVar[str] = "release"
    reasoning: Any = msgspec.UNSET
