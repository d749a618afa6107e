"""``embedded-eval``: held-out items of the embedded world, for end-to-end checks without data.

Items come from the registered ``embedded`` source (through the registry, with a seed kept apart
from training runs). Yes/no questions get the options (A) yes (B) no, as in AF-Reasoning-Eval; other
items without choices are left out. Options are lettered, a leading letter selects its option, and
the answer is judged with the MMAU/MMAR matcher. Its prediction file is JSONL with a ``prediction``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import msgspec

from afcot_benchmarks.common import answer_index, choices_of, field
from afcot_benchmarks.option_text import OptionTextBenchmark
from afcot_benchmarks.protocol import EvalItem, Loaded
from afcot_core.api import YES_NO, Item, inline_prompt, options_of

#: far from the seeds recipes use for generation, so evaluation items are held out
HELD_OUT_SEED = 9_001


class EmbeddedEvalConfig(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    #: items drawn from the source (open questions that are not yes/no are then left out)
    items: int = 40
    #: seed of the drawn items, apart from generation seeds (held out)
    seed: int = HELD_OUT_SEED
    #: the registered source the items come from
    source: str = "embedded"

    def __post_init__(self) -> None:
        if self.items < 1:
            raise ValueError("items must be >= 1")


SUBSETS = ("AQA-MCQ", "AQA-Yes/No", "Classification")


def eval_item(item: Item) -> EvalItem | None:
    """The item as a multiple-choice question; None for an open question that is not yes/no."""
    choices = options_of(item.choices, item.answer)
    if not choices:
        return None
    if item.kind == "classification":
        subset = "Classification"
    else:
        subset = "AQA-Yes/No" if {c.lower() for c in choices} == set(YES_NO) else "AQA-MCQ"
    answer = item.answer.strip().lower() if choices == YES_NO else item.answer
    record = {"id": item.id, "question": item.question, "choices": list(choices), "answer": answer,
              "subset": subset}
    return EvalItem(id=item.id, question=item.question, choices=choices, answer=answer,
                    answer_index=answer_index(answer, choices), groups={"subset": subset},
                    audio=item.audio, record=record)


def parse_record(record: dict[str, Any], where: str, audio_root: Path | None) -> EvalItem:
    """An item of a predictions file written by :meth:`EmbeddedEval.export` (audio is not kept)."""
    choices = choices_of(record, where)
    answer = field(record, "answer", where)
    return EvalItem(id=field(record, "id", where), question=field(record, "question", where), choices=choices,
                    answer=answer, answer_index=answer_index(answer, choices),
                    groups={"subset": field(record, "subset", where)}, record=record)


class EmbeddedEval(OptionTextBenchmark):
    name = "embedded-eval"
    prediction_keys = ("prediction",)
    parse_item = staticmethod(parse_record)
    breakdowns = ("subset",)
    lettered = True
    extract_on_score = True

    def group_order(self, breakdown: str) -> tuple[str, ...]:
        return SUBSETS

    def prompt(self, item: EvalItem, cot: bool) -> str:
        """The prompt the ``af3`` trainer trains on (AF-Reasoning-Eval's inline-option format)."""
        return inline_prompt(item.question, item.choices, cot)

    def load(self) -> Loaded:
        from afcot_core.api import default_plugins

        registration = default_plugins().registry("source").get(self.config.source, where="embedded-eval.source")
        source = registration.build(msgspec.convert({"items": self.config.items, "seed": self.config.seed},
                                                    registration.config))
        drawn = (eval_item(it) for part in source.partitions(self.config.items) for it in part)
        return Loaded([it for it in drawn if it is not None], [])

    def export(self, pairs: Iterable[tuple[EvalItem, str | None]]) -> dict[str, str]:
        rows: list[dict[str, Any]] = [{**item.record, "prediction": answer or ""} for item, answer in pairs]
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
        return {"embedded-eval-predictions.jsonl": text}
