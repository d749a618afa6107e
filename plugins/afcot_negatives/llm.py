"""The ``llm`` sampler: the paper's ``LLM_create_options`` for short free-text AQA answers.

- a yes/no answer gets the other one (the options are then ``[yes, no]``);
- an answer longer than ``max_words`` words stays open (``None``);
- any other answer gets ``k`` distractors written by a text LLM teacher, asked with the versioned
  prompt ``distractors_v1.txt`` for JSON ``{"distractors": [...]}``.

A reply whose distractors are fewer than ``k`` once the answer, excluded labels and repeats are
removed is asked again; after ``retries`` the item is rejected.

``fidelity = "release"`` asks as the released ``LLM_create_options`` does: its prompt verbatim
(``afcot_paper/prompts/release/create_options.txt``: three options, JSON key ``choices``), the reply read with one
strict ``json.loads`` of the text after the last ``</think>`` and never re-asked; a reply that will not parse, or
gives fewer than ``k`` usable options, rejects the item.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from string import Template
from typing import Any, ClassVar, Literal

import msgspec

from afcot_core.api import AsyncNegativeSampler, BadInput, Rejected, ReplyError, Seed, parse_json_reply
from afcot_negatives import DISTRACTOR_PROMPT
from afcot_negatives.ontology import label_key

PROMPT_VERSION = "distractors_v1"
#: the registered name of the released prompt (hashed into a run's lock like the versioned one)
RELEASE_PROMPT = "release/create_options"
#: the released prompt asks for exactly this many options
RELEASE_K = 3
YES_NO = ("yes", "no")


class LlmConfig(msgspec.Struct, forbid_unknown_fields=True):
    """Options of the ``llm`` sampler."""

    #: the registered teacher_llm that writes the distractors
    teacher: str = "embedded-llm"
    #: that teacher's config table
    teacher_config: dict[str, Any] = msgspec.field(default_factory=dict)
    #: answers longer than this many words get no options (the item stays open)
    max_words: int = 5
    #: re-asks when a reply has too few usable distractors; then the item is rejected
    retries: int = 2
    #: "afcot": ``distractors_v1.txt``, the reply read leniently and re-asked; "release": the released
    #: ``LLM_create_options`` prompt verbatim, key ``choices``, one strict ``json.loads``, no re-ask
    fidelity: Literal["afcot", "release"] = "afcot"


class DistractorReply(msgspec.Struct):
    distractors: list[str]


class ReleaseReply(msgspec.Struct):
    """The released reply: ``{"choices": [...]}``, read as the release reads every reply."""

    json_parse: ClassVar[str] = "release"
    choices: list[str]


def prompt_text() -> str:
    return DISTRACTOR_PROMPT.read_text(encoding="utf-8")


def render_prompt(question: str, answer: str, k: int = 3) -> str:
    """The distractor prompt for one question (placeholders replaced literally, JSON braces kept)."""
    text = prompt_text()
    text = text.replace("{k}", str(k)).replace("{question}", question.strip())
    return text.replace("{answer}", answer.strip())


def release_prompt_text() -> str:
    """The released ``LLM_create_options`` prompt (its header line not sent)."""
    from afcot_paper.prompts import text

    return text("create_options", "release")


def render_release_prompt(question: str, answer: str) -> str:
    """The released distractor prompt for one question (``$question`` and ``$answer`` filled)."""
    return Template(release_prompt_text()).substitute(question=question, answer=answer)


def yes_no(answer: str) -> str | None:
    """"yes" or "no" when the answer is one of them (case and a final full stop ignored)."""
    norm = answer.strip().lower().rstrip(".").strip()
    return norm if norm in YES_NO else None


class LlmSampler(AsyncNegativeSampler):
    """Distractors from an LLM teacher; ``teacher`` may be passed directly (else built from the registry)."""

    name = "llm"

    def __init__(self, config: LlmConfig, teacher: Any = None) -> None:
        self.config = config
        self._teacher = teacher

    @property
    def teacher(self) -> Any:
        if self._teacher is None:
            from afcot_core.api import default_plugins

            reg = default_plugins().registry("teacher_llm").get(self.config.teacher, "llm sampler teacher")
            self._teacher = reg.build(msgspec.convert(self.config.teacher_config, reg.config))
        return self._teacher

    async def asample(self, answer: str, k: int = 3, *, exclude: Iterable[str] = (), question: str = "",
                      seed: Seed = None, rng: random.Random | None = None) -> list[str] | None:
        yn = yes_no(answer)
        if yn is not None:
            return [w for w in YES_NO if w != yn][:k]
        if len(answer.split()) > self.config.max_words:
            return None
        banned = {label_key(answer), *(label_key(x) for x in exclude)}
        release = self.config.fidelity == "release"
        if release and k > RELEASE_K:
            raise BadInput(f"llm sampler: fidelity = \"release\" asks for {RELEASE_K} options (the released "
                           f"prompt), not {k}")
        prompt = render_release_prompt(question, answer) if release else render_prompt(question, answer, k)
        tries = 1 if release else 1 + self.config.retries
        problem = ""
        for _ in range(tries):
            reply = await self.teacher.ask(prompt)
            try:
                proposed = (parse_json_reply(reply.text, ReleaseReply).choices if release
                            else parse_json_reply(reply.text, DistractorReply).distractors)
            except ReplyError as exc:
                problem = str(exc)
                continue
            kept: list[str] = []
            seen = set(banned)
            for text in (p.strip().rstrip(".").strip() for p in proposed):
                key = label_key(text)
                if key and key not in seen:
                    seen.add(key)
                    kept.append(text)
            if len(kept) >= k:
                return kept[:k]
            problem = f"only {len(kept)} usable distractors in {proposed!r}"
        raise Rejected(f"distractors: {problem} after {tries} {'try' if tries == 1 else 'tries'}")


def preflight(config: LlmConfig) -> list[str]:
    from afcot_core.api import default_plugins

    names = default_plugins().registry("teacher_llm").names()
    if config.teacher not in names:
        known = ", ".join(names) or "none"
        return [f"llm sampler: unknown teacher_llm '{config.teacher}'; registered: {known}"]
    return []
