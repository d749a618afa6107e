"""The scripted LLM teacher: it plays the LLM's roles in the paper for the embedded question grammar.

It sees only the prompt text, like the paper's LLM: never the audio, and the ground truth only in
the validation prompt. Its answers follow from what the ALM said in the reasoning chain, so the
accept rate reflects how well the ALM listened.
"""

from __future__ import annotations

import functools
import json
import re
import zlib
from collections.abc import Callable

import numpy as np

from afcot_core.api import Batching, Request, Teacher, remove_option
from afcot_embedded.grammar import (
    SUB_QUESTIONS,
    VALUES,
    Clause,
    find_value,
    option_clauses,
    parse_clause,
    property_of,
    read_number,
    split_clauses,
)
from afcot_embedded.sampling import Sampling, choose
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


class EmbeddedLlmConfig(Sampling, forbid_unknown_fields=True):
    """Options of the scripted LLM; it samples among phrasings of its prose as Qwen3 does in thinking mode."""

    #: how its requests are coalesced into batches
    batching: Batching = Batching(max_batch=64, max_wait_ms=2.0)
    #: sampling temperature over its phrasings (Qwen3's thinking-mode default; 0: greedy)
    temperature: float = 0.6
    #: nucleus sampling over its phrasings (Qwen3's thinking-mode default)
    top_p: float = 0.95
    #: keep at most this many best phrasings (Qwen3's thinking-mode default)
    top_k: int = 20
    #: share of the REASONING it writes for Algorithm 6 that does not support the answer its chain gives
    #: (statements contradicted, the decisive ones left out, or the answer asserted without them), drawn per
    #: request from its seed; each such reply carries ``"planted"`` beside ``"reasoning"`` (read by no strategy
    #: nor by the causality check), so the truth stays in the record's trace (:func:`planted_false_reasoning`)
    false_reasoning: float = 0.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.false_reasoning <= 1.0:
            raise ValueError("false_reasoning must be between 0 and 1")


def _block(prompt: str, label: str) -> str:
    """The text after a line ending in ``label:`` (or after ``label:`` on the same line), up to a blank line."""
    m = re.search(rf"^(?:{label}):[ \t]*(.*?)(?:\n\s*\n|\Z)", prompt, re.MULTILINE | re.DOTALL)
    return m.group(1).strip() if m else ""


def _line(prompt: str, label: str) -> str:
    m = re.search(rf"^(?:{label}):[ \t]*(.*)$", prompt, re.MULTILINE)
    return m.group(1).strip() if m else ""


# where the prompt sets put the question: on the lines after a lead-in line that ends with a colon, or after
# "Question:"
_QUESTION_LEAD = re.compile(r"^[^\n]*(?:question about the audio|step-by-step reasoning)[^\n]*:[ \t]*\n"
                            r"(.*?)(?:\n\s*\n|\Z)", re.MULTILINE | re.DOTALL)


# the released prompts put the question on its lead-in line, its options on the lines right after it
_INLINE_LEAD = re.compile(r"^[^\n]*the following question about the audio[^\n:]*: (\S[^\n]*)"
                          r"((?:\n\([A-Z]\)[^\n]*)*)", re.MULTILINE)
_INLINE_TRUTH = " The ground truth answer is: "


def _question(prompt: str) -> tuple[str, list[str]]:
    inline = _INLINE_LEAD.search(prompt)
    if inline:
        lines = [line for line in inline.group(2).split("\n") if line]
        options = [re.sub(r"^\([A-Z]\)\s*", "", line).split(_INLINE_TRUTH)[0].strip() for line in lines]
        question = inline.group(1).split(_INLINE_TRUTH)[0]
        return question.split(" Choose the correct option")[0].strip(), options
    lead = _QUESTION_LEAD.search(prompt)
    block = lead.group(1).strip() if lead else _block(prompt, "Question")
    options = [o.strip() for o in re.findall(r"^\([A-Z]\)\s*(.+)$", block, re.MULTILINE)]
    return block.split(" Choose the correct option")[0].split("\n")[0].strip(), options


def _chain(prompt: str) -> list[tuple[str, str]]:
    """The question/answer pairs a prompt shows: ``Question:``/``Answer:`` lines or ``- q Answer: a`` lines."""
    pairs = [(q.strip(), a.strip()) for q, a in re.findall(r"^Question: (.*)\nAnswer: (.*)$", prompt, re.MULTILINE)]
    for line in prompt.splitlines():
        q, sep, a = line.strip().removeprefix("- ").rpartition(" Answer: ")
        if sep and line.lstrip().startswith("- "):
            pairs.append((q.strip(), a.strip()))
    return pairs


def _listed(prompt: str, label: str) -> list[str]:
    return [line.strip().removeprefix("- ").strip() for line in _block(prompt, label).splitlines()
            if line.strip().startswith("- ")]


# what a statement about the sound is about, in the forms the ALM's answers take (checked in order)
_STATEMENT_PATTERNS = (
    ("modulation", r"swell|level stays steady"), ("event_count", r"\d+ separate events"),
    ("regularity", r"events are (evenly spaced|irregular)"), ("tempo", r"events repeat"),
    ("pitch_direction", r"pitch is (rising|falling|steady)"), ("pitch_height", r"pitch is (high|medium|low)"),
    ("loudness_trend", r"louder|quieter|same level"), ("loudness_level", r"\b(loud|moderate|quiet) overall"),
    ("brightness", r"timbre is"), ("envelope", r"decays|sustained"), ("duration", r"lasts about"),
    ("texture", r"tonal sound|noise-like|impulsive events"),
)


def _about(text: str) -> list[str]:
    """The properties the statements of ``text`` are about."""
    found = (next((p for p, pattern in _STATEMENT_PATTERNS if re.search(pattern, sentence, re.IGNORECASE)), None)
             for sentence in re.split(r"(?<=[.?!])\s+|\n", text))
    return [p for p in found if p]


def _statements_of(text: str) -> list[tuple[str, str]]:
    """The declarative sentences of a text as (sub-question, sentence) pairs, so :class:`Facts` can read them."""
    pairs = []
    for sentence in (x.strip() for x in re.split(r"(?<=[.?!])\s+|\n", text)):
        if sentence and not sentence.endswith("?"):
            prop = next((p for p, pattern in _STATEMENT_PATTERNS if re.search(pattern, sentence, re.IGNORECASE)), None)
            pairs.append((SUB_QUESTIONS[prop], sentence) if prop else (sentence, sentence))
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
            if m := re.search(r"fit with the label '([^']+)'", q) or re.search(r"fits '([^']+)' on \d", a):
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


def _ruled_out(label: str, facts: Facts) -> bool:
    """Whether a stated property contradicts what ``label`` sounds like (the ontology's acoustic profile)."""
    info = leaf_classes().get(label.lower())
    return info is not None and any(facts.values.get(p, v) != v for p, v in info.acoustics.items())


def _asked(chain: list[tuple[str, str]]) -> set[str]:
    return {p for q, _ in chain if (p := property_of(q))}


def _needed(question: str, options: list[str]) -> list[str]:
    """The properties a question turns on, in the order it names them."""
    clauses = [c for o in options for c in option_clauses(o)] if _statements(options) else \
        [parse_clause(part) for part in split_clauses(question)]
    return list(dict.fromkeys(c.prop for c in clauses if c))


def _plan(topics: list[str]) -> str:
    return topics[0] if len(topics) == 1 else ", then ".join(topics[:-1]) + ", and finally " + topics[-1]


#: the kinds of planted false REASONING, drawn in this order of the seeded draw
FALSE_KINDS = ("contradicted", "unsupported", "asserted")
_PLANTED = re.compile(r'"planted"\s*:\s*"([a-z]+)"')


def planted_false_reasoning(record) -> str | None:
    """The kind of false REASONING the embedded LLM planted in ``record`` (from its trace), or None."""
    for call in record.trace:
        if call.role == "llm" and (m := _PLANTED.search(call.reply)) and m.group(1) in FALSE_KINDS:
            return m.group(1)
    return None


def _contradicted(sentence: str, rng: np.random.Generator) -> str:
    """``sentence`` with the value it states replaced by another of the same property (a number changed)."""
    for prop, values in VALUES.items():
        if values and (value := find_value(prop, sentence)) and (m := re.search(re.escape(value), sentence,
                                                                                re.IGNORECASE)):
            other = [v for v in values if v != value]
            return sentence[:m.start()] + other[int(rng.integers(len(other)))] + sentence[m.end():]
    if m := re.search(r"\d+(?:\.\d+)?", sentence):
        number = float(m.group(0))
        changed = f"{number * 3 + 2:.1f}" if "." in m.group(0) else str(int(number) * 3 + 2)
        return sentence[:m.start()] + changed + sentence[m.end():]
    return sentence


class ScriptedLlm:
    """The reply logic, one method per role; it only ever reads the prompt.

    ``choose`` picks one of several phrasings of its prose (the sampling of a real model); ``falsify`` (None:
    never) is the seeded generator of a request whose REASONING is to be false (``false_reasoning``).
    """

    def __init__(self, choose: Callable[[list[str]], str] = lambda options: options[0],
                 falsify: np.random.Generator | None = None) -> None:
        self.choose = choose
        self.falsify = falsify

    def reply(self, prompt: str) -> str:
        for key, handler in (('"distractors"', self.distractors), ('"remaining"', self.discriminate),
                             ('"followup"', self.followup), ("require_step_by_step", self.gate),
                             ('"validation"', self.validate), ('"summary"', self.summary),
                             ('"reasoning"', self.reasoning), ("line of reasoning about the audio", self.causality),
                             ('"answer"', self.predict)):
            if key in prompt or key.replace('"', "'") in prompt:  # the released prompts quote keys with '
                return json.dumps(handler(prompt))
        return "I am not sure what you are asking for."

    def gate(self, prompt: str) -> dict:
        props = _needed(*_question(prompt))
        reply: dict = {"require_step_by_step": int(len(props) >= 2)}
        if "sub_questions" in prompt:
            reply["sub_questions"] = [SUB_QUESTIONS[p] for p in props] if len(props) >= 2 else []
        return reply

    def predict(self, prompt: str) -> dict:
        question, options = _question(prompt)
        return {"answer": _derive(question, options, Facts(_chain(prompt)))}

    def followup(self, prompt: str) -> dict:
        """Algorithm 7: answer when the chain decides the question, else ask about the next property it needs."""
        question, options = _question(prompt)
        chain = _chain(prompt)
        answer = _derive(question, options, Facts(chain))
        if answer != "unsure":
            return {"answer": answer, "followup": ""}
        todo = [p for p in _needed(question, options) if p not in _asked(chain)]
        return {"answer": "unsure", "followup": SUB_QUESTIONS[todo[0]] if todo else ""}

    def discriminate(self, prompt: str) -> dict:
        """Algorithm 9: drop the labels the answers contradict; ask about the property that splits the rest.

        What each label sounds like is the LLM's world knowledge (the ontology's acoustic profiles),
        what this sound is like comes only from the ALM's answers in the prompt.
        """
        chain = _chain(prompt)
        facts = Facts(chain)
        labels = _listed(prompt, r"[^\n]*closely related labels")
        known = leaf_classes()
        remaining = [label for label in labels if not _ruled_out(label, facts)] or labels
        if len(remaining) == 1:
            return {"remaining": remaining, "answer": remaining[0], "followup": ""}
        asked = _asked(chain)
        split = {p: len({known[x.lower()].acoustics.get(p) for x in remaining if x.lower() in known})
                 for p in SUB_QUESTIONS if p not in asked}
        best = max(split, key=lambda p: split[p], default=None)
        if best is None or split[best] < 2:
            return {"remaining": remaining, "answer": "unsure", "followup": ""}
        return {"remaining": remaining, "answer": "unsure", "followup": SUB_QUESTIONS[best]}

    def causality(self, prompt: str) -> dict:
        """Answer from a REASONING text alone: what its sentences state, then which labels they leave, then
        the one option it names."""
        question, options = _question(prompt)
        text = _block(prompt, r"[^\n]*line of reasoning about the audio")
        facts = Facts(_statements_of(text))
        answer = _derive(question, options, facts)
        if answer == "unsure" and options and all(o.lower() in leaf_classes() for o in options):
            left = [o for o in options if not _ruled_out(o, facts)]
            answer = left[0] if len(left) == 1 else answer
        if answer == "unsure":
            named = [o for o in options if re.search(rf"\b{re.escape(o)}\b", text, re.IGNORECASE)]
            answer = named[0] if len(named) == 1 else answer
        return {"answer": answer}

    def validate(self, prompt: str) -> dict:
        question, options = _question(prompt)
        answer = _line(prompt, "The ground truth answer is|Ground truth answer")
        if not answer and (inline := re.search(r"The ground truth answer is: (.*?)\.?$", prompt, re.MULTILINE)):
            answer = inline.group(1)
        return {"validation": int(_inferable(question, options, Facts(_chain(prompt)), answer))}

    def summary(self, prompt: str) -> dict:
        question, _ = _question(prompt)
        subs = _listed(prompt, r"[^\n]*reasoning chain to answer this question|Sub-questions")
        plan = _plan([_TOPICS.get(property_of(s) or "", f"the answer to '{s}'") for s in subs])
        return {"summary": self.choose([
            f"The question asks: {question} To answer it, I will first check {plan}.",
            f"The question wants to determine: {question} I will start by checking {plan}.",
            f"To answer the question ({question}) I will listen for {plan}.",
        ])}

    def reasoning(self, prompt: str) -> dict:
        # the caption is already its own part of the answer; unanswerable questions are disregarded
        useful = [a for q, a in _chain(prompt)
                  if "caption" not in q.lower() and not any(u in a.lower() for u in _USELESS)]
        if "ground truth answer is" in prompt:  # Algorithms 7 and 9: why the chain answers the question
            answer = _line(prompt, "The ground truth answer is")
            topics = [_TOPICS.get(property_of(q) or "", "the sound") for q, _ in _chain(prompt)
                      if "caption" not in q.lower()]
            return {"reasoning": self.choose([
                f"Together, what I heard about {_plan(topics) if topics else 'the sound'} points to {answer}.",
                f"These observations about {_plan(topics) if topics else 'the sound'} single out {answer}.",
            ])}
        if not useful:
            return {"reasoning": "The audio gives no usable evidence."}
        if self.falsify is not None:
            planted = self.false_reasoning(prompt, useful, self.falsify)
            if planted is not None:
                return planted
        return {"reasoning": self.written(useful)}

    def written(self, useful: list[str], closing: str = "") -> str:
        steps = self.choose(["First|Next|Then|Also|Finally",
                             "To begin with|After that|Then|Moreover|Lastly"]).split("|")
        if not useful:
            useful = ["the clip plays from its start to its end"]
        lines = [f"{steps[min(i, 3)]}, {_sentence(a)}." for i, a in enumerate(useful[:-1])]
        lines.append(f"{steps[4] if lines else 'Listening closely'}, {_sentence(useful[-1])}.")
        closing = closing or self.choose([" Combining these observations answers the question.",
                                          " Taken together, these observations answer the question."])
        return " ".join(lines) + closing

    def false_reasoning(self, prompt: str, useful: list[str], rng: np.random.Generator) -> dict | None:
        """A REASONING that does not support the answer the chain gives, marked ``planted``; None when the chain
        decides nothing (nothing to contradict)."""
        question, options = _question(prompt)
        answer = _derive(question, options, Facts(_chain(prompt)))
        if answer == "unsure":
            return None
        needed = set(_needed(question, options))
        beside = [a for a in useful if not needed & set(_about(a))]
        kind = FALSE_KINDS[int(rng.integers(len(FALSE_KINDS)))]
        if kind == "contradicted":
            text = self.written([_contradicted(a, rng) for a in useful])
            if _derive(question, options, Facts(_statements_of(text))) == answer:  # still decides it: leave it out
                kind = "unsupported"
        if kind == "unsupported":
            text = self.written(beside)
        elif kind == "asserted":
            text = self.written(beside, f" So the answer is {answer}.")
        return {"reasoning": text, "planted": kind}

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
        super().__init__(config.batching, config)
        self.sampling: Sampling = config

    def generate(self, requests: list[Request]) -> list[str]:
        return [ScriptedLlm(functools.partial(choose, sampling=self.sampling, seed=r.seed),
                            self._falsify(r)).reply(r.prompt) for r in requests]

    def _falsify(self, request: Request) -> np.random.Generator | None:
        """The generator of a request drawn to get false REASONING (a seeded share of them), else None."""
        share = self.sampling.false_reasoning
        if not share:
            return None
        seed = self.sampling.seed if request.seed is None else request.seed
        rng = np.random.default_rng([seed, zlib.crc32(request.prompt.encode()), 0xFA15E])
        return rng if rng.random() < share else None
