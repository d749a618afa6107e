"""The paper's CoT generation algorithms, one coroutine per item (spec/PAPER.md §4).

* Algorithm 6 (AQA, BFS): gate with sub-questions, the ALM answers caption and sub-questions together.
* Algorithm 7 (AQA, DFS): gate, caption, then up to 10 rounds of one LLM follow-up and its ALM answer.
* Algorithm 8 (classification as MCQ): caption, then per choice a description (no audio) and a fit (audio).
* Algorithm 9 (classification, interactive; our reconstruction, the paper did not release it): caption,
  then per round the LLM drops the choices the answers rule out and asks the ALM one question about
  the acoustic property that separates those left, until one remains.

``gather`` runs the steps up to the LLM's prediction and validation (the accept rule then decides),
``compose`` writes the four parts. After the bounded re-asks a prediction that will not parse counts
as "unsure" and a validation as 0, as in the released code; the fallback is noted in the record's codes.

``fidelity = "release"`` runs Algorithms 6-8 as the released scripts do: their prompts verbatim, one strict
``json.loads`` per reply and no re-ask, their gate, stop and accept tests (:mod:`afcot_paper.release`).
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any, Literal

import msgspec

from afcot_core.api import CoT, Evidence, Item, ItemContext, Rejected, Strategy, format_question, remove_option
from afcot_paper import release
from afcot_paper.prompts import SETS, Prompts


class GateReply(msgspec.Struct):
    require_step_by_step: Any = None
    sub_questions: Any = None


class AnswerReply(msgspec.Struct):
    answer: Any = None


class ValidationReply(msgspec.Struct):
    validation: Any = None


class FollowupReply(msgspec.Struct):
    answer: Any = None
    followup: Any = None


class DiscriminateReply(msgspec.Struct):
    remaining: Any = None
    answer: Any = None
    followup: Any = None


class SummaryReply(msgspec.Struct):
    summary: str


class ReasoningReply(msgspec.Struct):
    reasoning: str


class PaperConfig(msgspec.Struct, forbid_unknown_fields=True):
    """Options shared by the paper's algorithms."""

    #: prompt set: "paper" (the released code's content), "release" (its texts verbatim) or "strict-perception"
    prompts: str = "paper"
    #: "afcot": replies repaired and re-asked, verdicts read leniently; "release": the released code exactly (its
    #: prompts verbatim, one strict json.loads and no re-ask, its gate, stop and accept tests)
    fidelity: Literal["afcot", "release"] = "afcot"
    #: causality check: the LLM answers from the REASONING part alone; reject when it misses the CONCLUSION
    causality: bool = False
    #: with the check on, false keeps a record whose REASONING the check finds not to lead to the CONCLUSION, noting
    #: ``causality/does-not-follow`` in its codes instead of rejecting it: the check is then measured against human
    #: labels (``afcot audit``, docs/algorithms.md)
    causality_rejects: bool = True

    def __post_init__(self) -> None:
        if self.prompts not in SETS:
            raise ValueError(f"prompts: unknown prompt set '{self.prompts}'; sets: {', '.join(SETS)}")
        if self.fidelity == "release" and self.prompts not in ("paper", "release"):
            raise ValueError(f"prompts: fidelity = \"release\" sends the released prompts; prompts = "
                             f"'{self.prompts}' contradicts it (leave it out)")


class Alg6Config(PaperConfig):
    """Options of Algorithm 6."""

    #: keep at most this many of the LLM's sub-questions (0: all of them, as in the paper)
    max_sub_questions: int = 0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_sub_questions < 0:
            raise ValueError("max_sub_questions must be >= 0 (0 keeps them all)")


class Alg7Config(PaperConfig):
    """Options of Algorithm 7."""

    #: most follow-up rounds (the paper's maximum_CoT_depth)
    max_rounds: int = 10

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_rounds < 1:
            raise ValueError("max_rounds must be >= 1")


class Alg8Config(PaperConfig):
    """Options of Algorithm 8."""


class Alg9Config(PaperConfig):
    """Options of Algorithm 9."""

    #: most discriminating rounds before the LLM must settle on a label
    max_rounds: int = 10

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.max_rounds < 1:
            raise ValueError("max_rounds must be >= 1")
        if self.fidelity == "release":
            raise ValueError("fidelity: Algorithm 9 was not released, so it has no \"release\" fidelity")


def truthy(value: Any) -> bool:
    """The paper accepts 1, "1", true and "true" (and yes) as a positive verdict."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return value == 1
    return isinstance(value, str) and value.strip().lower() in ("1", "true", "yes")


def as_text(value: Any) -> str:
    """A reply field as text ("" for a missing one)."""
    return value.strip() if isinstance(value, str) else "" if value is None else str(value)


def unsure(answer: str) -> bool:
    return answer.strip().lower() in ("", "unsure")


async def _nothing() -> None:
    return None


def require_choices(item: Item) -> list[str]:
    """The labels Algorithms 8 and 9 choose among: reject an item with fewer than two."""
    if not item.choices or len(item.choices) < 2:
        raise Rejected("choices/too-few: a classification item needs at least two choices")
    return item.choices


def ends_with_answer(prediction: str, answer: str) -> bool:
    """The paper's match: the lower-cased prediction ends with the answer without its option tag."""
    return prediction.strip().lower().endswith(remove_option(answer))


class PaperStrategy(Strategy):
    """What the paper's algorithms share: prompts, the LLM's verdicts and the causality check."""

    config: PaperConfig

    def __init__(self, config: PaperConfig) -> None:
        self.config = config
        self.release = config.fidelity == "release"
        self.prompts = Prompts("release" if self.release else config.prompts)

    def question(self, item: Item) -> str:
        return format_question(item.question, item.choices)

    def begin(self, item: Item, ctx: ItemContext) -> None:
        """Before the first call: the release asks every LLM prompt once (no re-ask of malformed JSON)."""
        if self.release:
            ctx.json_retries = 0

    def evidence_of(self, item: Item, evidence: Evidence) -> Evidence:
        """``evidence`` with what the release writes per sample (``formatted_question``) and the fidelity noted."""
        evidence.notes["formatted_question"] = self.question(item)
        if self.release:
            evidence.notes["fidelity"] = "release"
        return evidence

    async def caption(self, item: Item, ctx: ItemContext) -> tuple[str, str]:
        query = self.prompts.text("caption")
        return query, await ctx.alm(query, item.audio, step="caption")

    async def gate(self, prompt: str, ctx: ItemContext) -> GateReply | release.Gate:
        """Step 1 of Algorithms 6 and 7: reject unless the LLM finds step-by-step reasoning needed.

        The release rejects only a missing key or 0 / False / "0" / "False" / "false" ("yes", "no" and null pass);
        afcot accepts only 1 / "1" / true / "true" / "yes".
        """
        if self.release:
            reply = await ctx.llm_json(prompt, release.Gate, "gate")
            passed = not release.gate_says_no(reply.require_step_by_step)
        else:
            reply = await ctx.llm_json(prompt, GateReply, "gate")
            passed = truthy(reply.require_step_by_step)
        if not passed:
            raise Rejected("gate/no-step-by-step: the LLM found no need for step-by-step reasoning")
        return reply

    async def verdicts(self, item: Item, chain: list[tuple[str, str]], ctx: ItemContext,
                       prediction: str | None = None) -> Evidence:
        """Steps 3–4: the LLM's own answer (unless given) and its judgement whether the answer is inferable.

        Validation is 0 without a call when the chain holds only the caption, as in the paper.
        """
        context = {"caption": chain[0][1], "chain": self.prompts.evidence(chain[1:]), "question": self.question(item)}
        if self.release:
            return await self.release_verdicts(item, chain, ctx, context, prediction)
        predicted, judged = await ctx.gather(
            _nothing() if prediction is not None else ctx.llm_json(
                self.prompts.fill("predict", **context), AnswerReply, "predict", fallback=AnswerReply(answer="unsure")),
            _nothing() if len(chain) < 2 else ctx.llm_json(
                self.prompts.fill("validate", answer=item.answer, **context), ValidationReply, "validate",
                fallback=ValidationReply(validation=0)),
        )
        if predicted is not None:
            prediction = as_text(predicted.answer) or "unsure"
        judge = judged is not None and truthy(judged.validation)
        return Evidence(chain, prediction=prediction or "unsure", judge=judge)

    async def release_verdicts(self, item: Item, chain: list[tuple[str, str]], ctx: ItemContext,
                               context: dict[str, str], prediction: str | None) -> Evidence:
        """Steps 3-4 as released: a prediction that will not parse or lacks ``answer`` is 'unsure', one that is
        not text stops the released script (rejected here); a validation that will not parse or lacks its key
        is 0, and only 1 / "1" / True / "true" / "True" count as yes."""
        predicted, judged = await ctx.gather(
            _nothing() if prediction is not None else ctx.llm_json(
                self.prompts.fill("predict", **context), release.Answer, "predict",
                fallback=release.Answer(answer="unsure")),
            _nothing() if len(chain) < 2 else ctx.llm_json(
                self.prompts.fill("validate", answer=item.answer, **context), release.Validation, "validate",
                fallback=release.Validation(validation=0)),
        )
        if predicted is not None:
            if predicted.answer is msgspec.UNSET:
                ctx.codes.append("predict/fallback")
                predicted.answer = "unsure"
            if not isinstance(predicted.answer, str):
                raise Rejected(f"predict/not-text: the answer {predicted.answer!r} is not text (the released "
                               "script stops on it)")
            prediction = predicted.answer
        judge = judged is not None and release.validation_says_yes(judged.validation)
        return Evidence(chain, prediction=prediction, judge=judge)

    async def _written(self, prompt: str, ctx: ItemContext, key: str, ours: Any, theirs: Any) -> str:
        """The text the LLM writes under ``key`` (the release: that value, whatever it is, as text)."""
        if not self.release:
            return getattr(await ctx.llm_json(prompt, ours, key), key)
        value = getattr(await ctx.llm_json(prompt, theirs, key), key)
        if value is msgspec.UNSET:
            raise Rejected(f"{key}/missing-key: the reply has no '{key}'")
        return value if isinstance(value, str) else str(value)

    async def summary_of(self, prompt: str, ctx: ItemContext) -> str:
        """The SUMMARY the LLM writes."""
        return await self._written(prompt, ctx, "summary", SummaryReply, release.Summary)

    async def reasoning_of(self, prompt: str, ctx: ItemContext) -> str:
        """The REASONING (or its suffix) the LLM writes."""
        return await self._written(prompt, ctx, "reasoning", ReasoningReply, release.Reasoning)

    async def compose(self, item: Item, evidence: Evidence, ctx: ItemContext) -> CoT:
        cot = await self.write(item, evidence, ctx)
        if self.config.causality:
            await self.check_causality(item, cot, ctx)
        return cot

    @abstractmethod
    async def write(self, item: Item, evidence: Evidence, ctx: ItemContext) -> CoT:
        """Write the four parts from accepted evidence."""

    async def check_causality(self, item: Item, cot: CoT, ctx: ItemContext) -> None:
        """Reject when the LLM, shown only the question, its options and the REASONING, misses the CONCLUSION.

        Its verdict stays in the record's codes: ``causality/checked`` on every record it saw, with
        ``causality/does-not-follow`` on a record it kept although it failed (``causality_rejects = false``)."""
        ctx.codes.append("causality/checked")
        prompt = self.prompts.fill("causality", reasoning=cot.reasoning, question=self.question(item))
        reply = await ctx.llm_json(prompt, AnswerReply, "causality", fallback=AnswerReply(answer="unsure"))
        answer = as_text(reply.answer) or "unsure"
        if ends_with_answer(answer, item.answer):
            return
        if not self.config.causality_rejects:
            ctx.codes.append("causality/does-not-follow")
            return
        raise Rejected(f"causality: from the reasoning alone the LLM answers '{answer}', not '{item.answer}'")

    async def write_interactive(self, item: Item, evidence: Evidence, ctx: ItemContext) -> CoT:
        """Algorithms 7 and 9: SUMMARY on how to start; REASONING = the raw rounds, then the LLM's why."""
        question, rounds = self.question(item), evidence.chain[1:]
        summary, suffix = await ctx.gather(
            self.summary_of(self.prompts.fill("summary_interactive", question=question,
                                              sub_questions=self.prompts.bullets([q for q, _ in rounds])), ctx),
            self.reasoning_of(self.prompts.fill("reasoning_interactive", question=question, answer=item.answer,
                                                chain=self.prompts.listing(evidence.chain)), ctx),
        )
        raw = "".join(f"{q} {a}\n" for q, a in rounds)
        return CoT(summary=summary, caption=evidence.caption, reasoning=raw + suffix, conclusion=item.answer)


class Alg6(PaperStrategy):
    """AQA by breadth-first sub-questions: gate, parallel ALM answers, predict, validate, compose."""

    name = "alg6-aqa-subquestions"
    kinds = ("aqa",)
    config: Alg6Config

    async def gather(self, item: Item, ctx: ItemContext) -> Evidence:
        self.begin(item, ctx)
        # 1. gate and decomposition (LLM)
        gate = await self.gate(self.prompts.fill("gate", question=self.question(item)), ctx)
        subs = gate.sub_questions
        # the release takes any non-empty list and sends its entries as they are (blank ones included)
        usable = (lambda s: isinstance(s, str)) if self.release else (lambda s: isinstance(s, str) and s.strip())
        if not isinstance(subs, list) or not subs or not all(usable(s) for s in subs):
            raise Rejected("gate/no-sub-questions: sub_questions is missing, empty or not a list of strings")
        subs = subs[: self.config.max_sub_questions or None]
        if not self.release:
            subs = [s.strip() for s in subs]
        # 2. the ALM answers the caption query and every sub-question, all at once (BFS)
        queries = [self.prompts.text("caption"), *subs]
        answers = await ctx.gather(*(ctx.alm(q, item.audio, step=f"sub:{i}") for i, q in enumerate(queries)))
        # 3–4. prediction and validation (LLM)
        evidence = await self.verdicts(item, list(zip(queries, answers, strict=True)), ctx)
        evidence.notes["sub_questions"] = subs
        return self.evidence_of(item, evidence)

    async def write(self, item: Item, evidence: Evidence, ctx: ItemContext) -> CoT:
        question = self.question(item)
        summary, reasoning = await ctx.gather(
            self.summary_of(self.prompts.fill("summary", question=question, sub_questions=self.prompts.bullets(
                [q for q, _ in evidence.chain[1:]])), ctx),
            self.reasoning_of(self.prompts.fill("reasoning", question=question,
                                                chain=self.prompts.listing(evidence.chain)), ctx),
        )
        return CoT(summary=summary, caption=evidence.caption, reasoning=reasoning, conclusion=item.answer)


class Alg7(PaperStrategy):
    """AQA by depth-first conversation: gate, caption, then one LLM follow-up and its ALM answer per round."""

    name = "alg7-aqa-interactive"
    kinds = ("aqa",)
    config: Alg7Config

    async def gather(self, item: Item, ctx: ItemContext) -> Evidence:
        self.begin(item, ctx)
        question = self.question(item)
        # 1. gate (LLM), without sub-questions
        await self.gate(self.prompts.fill("gate_only", question=question), ctx)
        # 2. caption (ALM)
        chain = [await self.caption(item, ctx)]
        # 3. rounds: the LLM answers almost surely, or asks one follow-up that the ALM answers
        answer = "unsure"
        for round_ in range(self.config.max_rounds):
            prompt = self.prompts.fill("followup", caption=chain[0][1], chain=self.prompts.evidence(chain[1:]),
                                       question=question)
            if self.release:
                done, answer, followup = await self.release_round(prompt, round_, ctx)
            else:
                reply = await ctx.llm_json(prompt, FollowupReply, f"followup:{round_}",
                                           fallback=FollowupReply(answer="unsure"))
                answer = as_text(reply.answer) or "unsure"
                done, followup = not unsure(answer), as_text(reply.followup)
            if done:
                break
            if not followup and not self.release:
                raise Rejected("followup/missing: the LLM was unsure and asked no follow-up question")
            chain.append((followup, await ctx.alm(followup, item.audio, step=f"round:{round_}")))
        # 4. validation (LLM); the accept rule decides
        evidence = await self.verdicts(item, chain, ctx, prediction=answer)
        evidence.notes["rounds"] = len(chain) - 1
        return self.evidence_of(item, evidence)

    @staticmethod
    async def release_round(prompt: str, round_: int, ctx: ItemContext) -> tuple[bool, str, str | None]:
        """One released round: stop when ``answer != 'unsure'`` (exactly); a reply that will not parse is
        'unsure' without a follow-up. A missing or non-text answer stops the released script (rejected here);
        an unsure reply without a ``followup`` key is invalid, one with any text is sent to the ALM."""
        reply = await ctx.llm_json(prompt, release.Followup, f"followup:{round_}",
                                   fallback=release.Followup(answer="unsure"))
        if not isinstance(reply.answer, str):
            raise Rejected(f"followup/no-answer: the reply's answer is {reply.answer!r}, not text (the released "
                           "script stops on it)")
        if reply.answer != "unsure":
            return True, reply.answer, None
        if reply.followup is msgspec.UNSET or not isinstance(reply.followup, str):
            raise Rejected("followup/missing: the LLM was unsure and asked no follow-up question")
        return False, reply.answer, reply.followup

    async def write(self, item: Item, evidence: Evidence, ctx: ItemContext) -> CoT:
        return await self.write_interactive(item, evidence, ctx)


class Alg8(PaperStrategy):
    """Classification as MCQ: per-choice description (no audio) and fit (with audio), rule-based compose."""

    name = "alg8-classification-mcq"
    kinds = ("classification",)
    config: Alg8Config

    async def gather(self, item: Item, ctx: ItemContext) -> Evidence:
        self.begin(item, ctx)
        choices = require_choices(item)
        # the caption (audio), then per choice a description (no audio: the ALM as a knowledge source) and a fit
        queries: list[tuple[str, bool]] = [(self.prompts.text("caption"), True)]
        for choice in choices:
            queries += [(self.prompts.fill("describe", label=choice), False),
                        (self.prompts.fill("fit", label=choice), True)]
        answers = await ctx.gather(*(ctx.alm(q, item.audio if audio else None, step=f"query:{i}")
                                         for i, (q, audio) in enumerate(queries)))
        chain = [(q, a) for (q, _), a in zip(queries, answers, strict=True)]
        return self.evidence_of(item, await self.verdicts(item, chain, ctx))

    async def write(self, item: Item, evidence: Evidence, ctx: ItemContext) -> CoT:
        assert item.choices is not None
        summary = self.prompts.fill("classification_summary", choices=", ".join(item.choices))
        pairs = evidence.chain[1:]
        reasoning = "\n".join(f"{pairs[i][1]} {pairs[i + 1][1]}" for i in range(0, len(pairs), 2))
        return CoT(summary=summary, caption=evidence.caption, reasoning=reasoning, conclusion=item.answer)


class Alg9(PaperStrategy):
    """Classification by elimination: per round the LLM drops ruled-out choices and asks one discriminating question."""

    name = "alg9-classification-interactive"
    kinds = ("classification",)
    config: Alg9Config

    async def gather(self, item: Item, ctx: ItemContext) -> Evidence:
        choices = require_choices(item)
        chain = [await self.caption(item, ctx)]
        remaining = list(choices)
        history = [list(remaining)]
        answer = "unsure"
        for round_ in range(self.config.max_rounds):
            prompt = self.prompts.fill("discriminate", caption=chain[0][1], chain=self.prompts.evidence(chain[1:]),
                                       labels=self.prompts.bullets(remaining))
            reply = await ctx.llm_json(prompt, DiscriminateReply, f"discriminate:{round_}",
                                       fallback=DiscriminateReply(answer="unsure"))
            remaining = self._kept(remaining, reply.remaining)
            history.append(list(remaining))
            answer = as_text(reply.answer) or "unsure"
            if not unsure(answer):
                break
            if len(remaining) == 1:
                answer = remaining[0]
                break
            followup = as_text(reply.followup)
            if not followup:
                raise Rejected("followup/missing: several labels remain and the LLM asked no follow-up question")
            chain.append((followup, await ctx.alm(followup, item.audio, step=f"round:{round_}")))
        evidence = await self.verdicts(item, chain, ctx, prediction=answer)
        evidence.notes.update(rounds=len(chain) - 1, remaining=history)
        return self.evidence_of(item, evidence)

    @staticmethod
    def _kept(remaining: list[str], reply: Any) -> list[str]:
        """The labels the LLM keeps: only ones still in play; a reply that names none of them keeps them all."""
        if not isinstance(reply, list):
            return remaining
        named = {as_text(label).lower() for label in reply}
        kept = [label for label in remaining if label.lower() in named]
        return kept or remaining

    async def write(self, item: Item, evidence: Evidence, ctx: ItemContext) -> CoT:
        return await self.write_interactive(item, evidence, ctx)
