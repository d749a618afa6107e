"""Algorithm 6 (AQA, parallel sub-questions) and Algorithm 8 (classification as MCQ).

Each follows the paper step by step (spec/PAPER.md §4); ``gather`` covers the steps up to the
LLM's prediction and validation, ``compose`` writes the four parts once the draft is accepted.
"""

from __future__ import annotations

import asyncio
from typing import Any

import msgspec

from afcot_core.errors import Rejected
from afcot_core.protocols import Evidence, ItemContext, Strategy
from afcot_core.records import CoT, Item
from afcot_core.template import format_question
from afcot_paper.prompts import chain_text, fill, text


class GateReply(msgspec.Struct):
    require_step_by_step: Any = None
    sub_questions: Any = None


class AnswerReply(msgspec.Struct):
    answer: Any = None


class ValidationReply(msgspec.Struct):
    validation: Any = None


class SummaryReply(msgspec.Struct):
    summary: str


class ReasoningReply(msgspec.Struct):
    reasoning: str


class Alg6Config(msgspec.Struct, forbid_unknown_fields=True):
    """Options of Algorithm 6."""

    max_sub_questions: int = 8


class Alg8Config(msgspec.Struct, forbid_unknown_fields=True):
    """Options of Algorithm 8."""


def truthy(value: Any) -> bool:
    """The paper accepts 1, "1", true and "true" (and yes) as a positive verdict."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value == 1
    return isinstance(value, str) and value.strip().lower() in ("1", "true", "yes")


async def predict_and_validate(item: Item, question: str, chain: list[tuple[str, str]],
                               ctx: ItemContext) -> tuple[str, bool]:
    """Steps 3–4: the LLM's own answer, and its judgement whether the ground truth is inferable."""
    context = {"caption": chain[0][1], "chain": chain_text(chain[1:]), "question": question}
    predicted, judged = await asyncio.gather(
        ctx.llm_json(fill("predict", **context), AnswerReply, "predict"),
        ctx.llm_json(fill("validate", answer=item.answer, **context), ValidationReply, "validate"),
    )
    answer = predicted.answer if isinstance(predicted.answer, str) else str(predicted.answer or "")
    return answer, truthy(judged.validation)


class Alg6(Strategy):
    """AQA by breadth-first sub-questions: gate, parallel ALM answers, predict, validate, compose."""

    name = "alg6-aqa-subquestions"
    kinds = ("aqa",)

    def __init__(self, config: Alg6Config) -> None:
        self.config = config

    async def gather(self, item: Item, ctx: ItemContext) -> Evidence:
        question = format_question(item.question, item.choices)
        gate = await ctx.llm_json(fill("gate", question=question), GateReply, "gate")
        subs = gate.sub_questions
        if not truthy(gate.require_step_by_step):
            raise Rejected("gate: the LLM found no need for step-by-step reasoning")
        if not isinstance(subs, list) or not subs or not all(isinstance(s, str) and s.strip() for s in subs):
            raise Rejected("gate: sub_questions is missing, empty or not a list of strings")
        subs = [s.strip() for s in subs[: self.config.max_sub_questions]]
        queries = [text("caption"), *subs]
        answers = await asyncio.gather(*(ctx.alm(q, item.audio) for q in queries))
        chain = list(zip(queries, answers, strict=True))
        prediction, judge = await predict_and_validate(item, question, chain, ctx)
        return Evidence(chain, prediction=prediction, judge=judge, notes={"sub_questions": subs})

    async def compose(self, item: Item, evidence: Evidence, ctx: ItemContext) -> CoT:
        question = format_question(item.question, item.choices)
        subs = "\n".join(f"- {q}" for q, _ in evidence.chain[1:])
        summary, reasoning = await asyncio.gather(
            ctx.llm_json(fill("summary", question=question, sub_questions=subs), SummaryReply, "summary"),
            ctx.llm_json(fill("reasoning", question=question, chain=chain_text(evidence.chain)),
                         ReasoningReply, "reasoning"),
        )
        return CoT(summary=summary.summary, caption=evidence.caption, reasoning=reasoning.reasoning,
                   conclusion=item.answer)


class Alg8(Strategy):
    """Classification as MCQ: per-choice description (no audio) and fit (with audio), rule-based compose."""

    name = "alg8-classification-mcq"
    kinds = ("classification",)

    def __init__(self, config: Alg8Config) -> None:
        self.config = config

    async def gather(self, item: Item, ctx: ItemContext) -> Evidence:
        if not item.choices or len(item.choices) < 2:
            raise Rejected("alg8: a classification item needs at least two choices")
        queries: list[tuple[str, bool]] = [(text("caption"), True)]
        for choice in item.choices:
            queries += [(fill("describe", label=choice), False), (fill("fit", label=choice), True)]
        answers = await asyncio.gather(*(ctx.alm(q, item.audio if audio else None) for q, audio in queries))
        chain = [(q, a) for (q, _), a in zip(queries, answers, strict=True)]
        question = format_question(item.question, item.choices)
        prediction, judge = await predict_and_validate(item, question, chain, ctx)
        return Evidence(chain, prediction=prediction, judge=judge)

    async def compose(self, item: Item, evidence: Evidence, ctx: ItemContext) -> CoT:
        assert item.choices is not None
        summary = fill("classification_summary", choices=", ".join(item.choices))
        pairs = evidence.chain[1:]
        reasoning = "\n".join(f"{pairs[i][1]} {pairs[i + 1][1]}" for i in range(0, len(pairs), 2))
        return CoT(summary=summary, caption=evidence.caption, reasoning=reasoning, conclusion=item.answer)
