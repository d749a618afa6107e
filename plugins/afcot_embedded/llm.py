"""The scripted LLM teacher: it plays the LLM's roles in the paper for the embedded question grammar.

It sees only the prompt text, like the paper's LLM: never the audio, and the ground truth only in
the validation prompt. Its answers follow from what the ALM said in the reasoning chain, so the
accept rate reflects how well the ALM listened.
"""

from __future__ import annotations

import json
import re
import zlib

import msgspec
import numpy as np

from afcot_core.teacher import Batching, Request, Teacher
from afcot_core.template import remove_option
from afcot_embedded.grammar import (
    SUB_QUESTIONS,
    Clause,
    find_value,
    option_clauses,
    parse_clause,
    property_of,
    read_number,
    split_clauses,
)
from afcot_embedded.world import close_negatives, leaf_classes

_TOPICS = {
    "texture": "whether the sound is tonal, noise-like or made of impulsive events",
    "pitch_direction": "whether the pitch rises, falls or stays steady",
    "pitch_height": "how high the pitch is",
    "loudness_trend": "how the loudness changes from the beginning to the end",
    "loudness_level": "how loud the sound is",
    "brightness": "whether the timbre is bright or dark",
    "regularity": "whether the events are evenly spaced",
    "tempo": "how fast the events repeat",
    "envelope": "whether the sound decays after a sharp start",
    "modulation": "whether the level swells",
    "duration": "how long the sound lasts",
    "event_count": "how many separate events there are",
}
_USELESS = ("cannot tell", "need to hear", "do not know")


class EmbeddedLlmConfig(msgspec.Struct, forbid_unknown_fields=True):
    """Options of the scripted LLM."""

    batching: Batching = Batching(max_batch=64, max_wait_ms=2.0)


def _block(prompt: str, label: str) -> str:
    """The text after ``label:`` at the start of a line, up to the next blank line."""
    m = re.search(rf"^{label}:[ \t]*(.*?)(?:\n\s*\n|\Z)", prompt, re.MULTILINE | re.DOTALL)
    return m.group(1).strip() if m else ""


def _line(prompt: str, label: str) -> str:
    m = re.search(rf"^{label}:[ \t]*(.*)$", prompt, re.MULTILINE)
    return m.group(1).strip() if m else ""


def _question(prompt: str) -> tuple[str, list[str]]:
    block = _block(prompt, "Question")
    options = [o.strip() for o in re.findall(r"^\([A-G]\)\s*(.+)$", block, re.MULTILINE)]
    return block.split(" Choose the correct option")[0].split("\n")[0].strip(), options


def _chain(prompt: str) -> list[tuple[str, str]]:
    pairs = []
    for line in _block(prompt, "Reasoning chain").splitlines():
        q, sep, a = line.removeprefix("- ").rpartition(" Answer: ")
        if sep:
            pairs.append((q.strip(), a.strip()))
    return pairs


def _statements(options: list[str]) -> bool:
    """Whether the options are statements to check (not just yes / no)."""
    return bool(options) and not {o.lower() for o in options} <= {"yes", "no"}


class Facts:
    """What the chain says about each property, and the fit scores of labels."""

    def __init__(self, chain: list[tuple[str, str]]) -> None:
        self.values: dict[str, str | float] = {}
        self.fits: dict[str, float] = {}
        for q, a in chain:
            if m := re.search(r"fit with the label '([^']+)'", q):
                score = re.search(r"on (\d+) of (\d+)", a)
                self.fits[m.group(1).lower()] = int(score.group(1)) / int(score.group(2)) if score else 0.0
                continue
            prop = property_of(q)
            if prop is None or any(u in a.lower() for u in _USELESS):
                continue
            value = read_number(prop, a) if prop in ("duration", "event_count") else find_value(prop, a)
            if value is not None:
                self.values.setdefault(prop, value)

    def truth(self, clause: Clause | None) -> bool | None:
        """Whether the clause holds; None when the chain does not say."""
        if clause is None or clause.prop not in self.values:
            return None
        return clause.holds(self.values[clause.prop])


def _derive(question: str, options: list[str], ev: Facts) -> str:
    """The LLM's answer from the evidence, or "unsure"."""
    if ev.fits:
        best = max(ev.fits.values())
        top = [label for label, s in ev.fits.items() if s == best]
        return top[0] if len(top) == 1 else "unsure"
    if _statements(options):
        holding = [o for o in options if all(ev.truth(c) is True for c in option_clauses(o))]
        return holding[0] if len(holding) == 1 else "unsure"
    truths = [ev.truth(parse_clause(c)) for c in split_clauses(question)]
    if False in truths:
        return "no" if None not in truths else "unsure"
    return "yes" if truths and None not in truths else "unsure"


def _inferable(question: str, options: list[str], ev: Facts, answer: str) -> bool:
    """The judge: is ``answer`` consistent with, and singled out by, the evidence?"""
    answer = remove_option(answer)
    if ev.fits:
        return ev.fits.get(answer, -1.0) == max(ev.fits.values())
    if _statements(options):
        def ruled_out(o: str) -> bool:
            return any(ev.truth(c) is False for c in option_clauses(o))
        gt = next((o for o in options if o.lower() == answer), None)
        return gt is not None and not ruled_out(gt) and all(ruled_out(o) for o in options if o is not gt)
    truths = [ev.truth(parse_clause(c)) for c in split_clauses(question)]
    if answer == "no":
        return False in truths
    return answer == "yes" and bool(truths) and all(t is True for t in truths)


def _sentence(text: str) -> str:
    text = text.strip().rstrip(".")
    return text[0].lower() + text[1:] if text else text


class ScriptedLlm:
    """The reply logic, one method per role; it only ever reads the prompt."""

    def reply(self, prompt: str) -> str:
        for key, handler in (("require_step_by_step", self.gate), ('{"answer"', self.predict),
                             ('"validation"', self.validate), ('"summary"', self.summary),
                             ('"reasoning"', self.reasoning), ('"distractors"', self.distractors)):
            if key in prompt:
                return json.dumps(handler(prompt))
        return "I am not sure what you are asking for."

    def gate(self, prompt: str) -> dict:
        question, options = _question(prompt)
        clauses = [c for o in options for c in option_clauses(o)] if _statements(options) else \
            [parse_clause(part) for part in split_clauses(question)]
        props = list(dict.fromkeys(c.prop for c in clauses if c))
        if len(props) < 2:
            return {"require_step_by_step": 0, "sub_questions": []}
        return {"require_step_by_step": 1, "sub_questions": [SUB_QUESTIONS[p] for p in props]}

    def predict(self, prompt: str) -> dict:
        question, options = _question(prompt)
        return {"answer": _derive(question, options, Facts(_chain(prompt)))}

    def validate(self, prompt: str) -> dict:
        question, options = _question(prompt)
        answer = _line(prompt, "Ground truth answer")
        return {"validation": int(_inferable(question, options, Facts(_chain(prompt)), answer))}

    def summary(self, prompt: str) -> dict:
        question, _ = _question(prompt)
        subs = [s.removeprefix("- ").strip() for s in _block(prompt, "Sub-questions").splitlines() if s.strip()]
        topics = [_TOPICS.get(property_of(s) or "", f"the answer to '{s}'") for s in subs]
        plan = topics[0] if len(topics) == 1 else ", then ".join(topics[:-1]) + ", and finally " + topics[-1]
        return {"summary": f"The question asks: {question} To answer it, I will first check {plan}."}

    def reasoning(self, prompt: str) -> dict:
        # the caption is already its own part of the answer; unanswerable questions are disregarded
        useful = [a for q, a in _chain(prompt)
                  if "caption" not in q.lower() and not any(u in a.lower() for u in _USELESS)]
        if not useful:
            return {"reasoning": "The audio gives no usable evidence."}
        steps = ["First", "Next", "Then", "Also"]
        lines = [f"{steps[min(i, len(steps) - 1)]}, {_sentence(a)}." for i, a in enumerate(useful[:-1])]
        lines.append(f"{'Finally' if lines else 'Listening closely'}, {_sentence(useful[-1])}.")
        return {"reasoning": " ".join(lines) + " Combining these observations answers the question."}

    def distractors(self, prompt: str) -> dict:
        answer = _line(prompt, "Answer").lower()
        rng = np.random.default_rng(zlib.crc32(answer.encode()))
        if answer in leaf_classes():
            return {"distractors": close_negatives(answer, rng)}
        return {"distractors": []}


class EmbeddedLlm(Teacher):
    role = "llm"
    model = "embedded-llm"
    offload = False  # replies are pure string work

    def __init__(self, config: EmbeddedLlmConfig) -> None:
        super().__init__(config.batching)
        self.script = ScriptedLlm()

    def generate(self, requests: list[Request]) -> list[str]:
        return [self.script.reply(r.prompt) for r in requests]
