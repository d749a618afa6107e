"""The embedded ALM teacher: it answers from DSP measurements of the audio it is given.

It never sees an item's labels or answer: only the prompt and the waveform. Its knowledge of what
each class sounds like (for the "describe" and "fit" queries of Algorithm 8) comes from the
``acoustics`` profiles in the embedded ontology.
"""

from __future__ import annotations

import functools
import re
from collections import OrderedDict
from collections.abc import Callable

from afcot_core.api import COT_SUFFIX, AudioRef, Batching, CoT, Request, Teacher, load_audio, render
from afcot_embedded.grammar import Clause, option_clauses, parse_clause, property_of, split_clauses
from afcot_embedded.listen import Measurements, measure
from afcot_embedded.sampling import Sampling, choose
from afcot_embedded.world import ClassInfo, leaf_classes

_OPTION = re.compile(r"\(([A-Z])\)\s*(.+?)(?=\s*\([A-Z]\)|\Z)", re.DOTALL)
_PROP_WORDS = {"texture": "texture", "pitch_direction": "pitch direction", "pitch_height": "pitch height",
               "brightness": "brightness", "regularity": "event spacing", "tempo": "event rate",
               "envelope": "envelope", "modulation": "level changes", "loudness_trend": "loudness trend"}


class EmbeddedAlmConfig(Sampling, forbid_unknown_fields=True):
    """Options of the embedded ALM; it decodes greedily by default, as the paper runs Qwen2.5-Omni."""

    #: how its requests are coalesced into batches
    batching: Batching = Batching(max_batch=32, max_wait_ms=2.0)


def answer_property(prop: str, m: Measurements) -> str:
    """A one-sentence answer about ``prop``."""
    if prop == "texture":
        return {"tonal": "It is a tonal sound with a clear pitch.",
                "noise-like": "It is a noise-like sound without a clear pitch.",
                "impulsive": "It is made of short impulsive events."}[m.texture]
    if prop in ("pitch_direction", "pitch_height"):
        if m.pitch_hz is None:
            return "There is no clear pitch."
        if prop == "pitch_direction":
            return f"The pitch is {m.pitch_direction}."
        return f"The pitch is {m.pitch_height}, around {m.pitch_hz:.0f} Hz."
    if prop == "loudness_trend":
        return {"louder": "The sound gets louder towards the end.",
                "quieter": "The sound gets quieter towards the end.",
                "same level": "The sound stays at the same level."}[m.loudness_trend]
    if prop == "loudness_level":
        return f"The sound is {m.loudness_level} overall, at about {m.loudness_db:.0f} dB full scale."
    if prop == "brightness":
        return f"The timbre is {m.brightness}, with a spectral centroid near {m.centroid_hz:.0f} Hz."
    if prop in ("regularity", "tempo", "event_count") and m.texture != "impulsive":
        return "There are no separate events; it is one continuous sound."
    if prop == "regularity":
        return f"The events are {m.regularity}."
    if prop == "tempo":
        return f"The events repeat {m.tempo}, about {m.event_rate:.1f} per second."
    if prop == "event_count":
        return f"I hear {m.event_count} separate events."
    if prop == "envelope":
        return "The sound starts sharply and then decays." if m.envelope == "decays" else "The sound is sustained."
    if prop == "modulation":
        return {"steady": "The level stays steady without swells.", "regular swells": "The level swells regularly.",
                "irregular swells": "The level swells irregularly."}[m.modulation]
    if prop == "duration":
        return f"The sound lasts about {m.duration:.1f} seconds."
    raise KeyError(prop)


def caption(m: Measurements) -> str:
    kind = {"tonal": "tonal sound", "noise-like": "noise-like sound", "impulsive": "series of short impulsive events"}
    text = f"A {m.loudness_level} {kind[m.texture]}"
    if m.texture == "tonal" and m.pitch_hz:
        text += f" with a {m.pitch_height} pitch that is {m.pitch_direction}"
    elif m.texture == "impulsive":
        text += f", {m.regularity} and {m.tempo}"
    else:
        text += f" with a {m.brightness} timbre"
    text += f", lasting about {m.duration:.1f} seconds; "
    if m.envelope == "decays":
        return text + "it starts sharply and decays."
    return text + {"louder": "it gets louder towards the end.", "quieter": "it gets quieter towards the end.",
                   "same level": "its level stays about the same."}[m.loudness_trend]


def mismatches(info: ClassInfo, m: Measurements) -> list[tuple[str, object, str]]:
    """The class's acoustic properties that the measurements contradict: (property, observed, expected)."""
    return [(prop, m.value(prop), expected) for prop, expected in info.acoustics.items() if m.value(prop) != expected]


def fit(label: str, m: Measurements) -> str:
    info = leaf_classes().get(label.strip().lower())
    if info is None:
        return f"I do not know what '{label}' sounds like."
    diffs = [f"{_PROP_WORDS[prop]}: the sound is {observed or 'without it'}, while '{info.name}' is {expected}"
             for prop, observed, expected in mismatches(info, m)]
    n = len(info.acoustics)
    text = f"The sound fits '{info.name}' on {n - len(diffs)} of {n} properties."
    return text + ("" if not diffs else " It differs in " + "; and in ".join(diffs) + ".")


def describe(label: str) -> str:
    info = leaf_classes().get(label.strip().lower())
    return f"I do not know what '{label}' sounds like." if info is None else info.description


def _score(option: str, m: Measurements) -> tuple[int, int]:
    """How many of the option's clauses hold, and how many were understood."""
    clauses = [c for c in option_clauses(option) if c]
    return sum(_holds(c, m) for c in clauses), len(clauses)


def _holds(clause: Clause, m: Measurements) -> bool:
    observed = m.value(clause.prop)
    return observed is not None and clause.holds(observed)


def answer_question(prompt: str, m: Measurements) -> str:
    """Answer a benchmark-style question, with options; in the tagged format when asked for it."""
    cot = "<CONCLUSION>" in prompt
    body = prompt.replace(COT_SUFFIX, "")
    first = _OPTION.search(body)
    question = body[: first.start()] if first else body
    question = question.split("Choose the correct option")[0].strip()
    options = [(letter, text.strip().rstrip(".").strip()) for letter, text in _OPTION.findall(body)]
    labels = [t.lower() for _, t in options]
    notes: list[str] = []
    if options and all(t in leaf_classes() for t in labels):
        notes = [fit(t, m) for t in labels]
        infos = [leaf_classes()[t] for t in labels]
        scores = [1 - len(mismatches(info, m)) / len(info.acoustics) for info in infos]
    else:
        clauses = [c for part in split_clauses(question) if (c := parse_clause(part))]
        notes = [answer_property(c.prop, m) for c in clauses]
        if options and set(labels) <= {"yes", "no"}:
            verdict = "yes" if clauses and all(_holds(c, m) for c in clauses) else "no"
            scores = [1.0 if t == verdict else 0.0 for t in labels]
        else:
            scores = [s / max(n, 1) for s, n in (_score(t, m) for t in labels)]
            notes += [answer_property(p, m) for p in {c.prop for t in labels for c in option_clauses(t) if c}]
    if not options:
        return caption(m)
    best = max(range(len(options)), key=lambda i: scores[i])
    letter, text = options[best]
    answer = f"({letter}) {text}"
    if not cot:
        return answer
    return render(CoT(summary=f"The question asks: {question} I will listen for the properties that decide it.",
                      caption=caption(m), reasoning=" ".join(dict.fromkeys(notes)) or "I listened to the audio.",
                      conclusion=answer))


def respond(prompt: str, m: Measurements | None, pick: Callable[[list[str]], str] = lambda c: c[0]) -> str:
    """The ALM's reply to ``prompt`` given the measurements of its audio (None when there is none).

    ``pick`` chooses among phrasings (its sampling); what a reply says depends only on the audio.
    """
    if match := re.search(r"acoustic properties of '([^']+)'", prompt):
        return describe(match.group(1))
    if m is None:
        return "I need to hear the audio to answer that."
    if match := re.search(r"fit with the label '([^']+)'", prompt):
        return fit(match.group(1), m)
    if re.search(r"\(A\)", prompt):
        return answer_question(prompt, m)
    if "caption" in prompt.lower():
        text = caption(m)
        return pick([text, "The clip holds " + text[0].lower() + text[1:]])
    prop = property_of(prompt)
    return answer_property(prop, m) if prop else "I cannot tell that from the audio."


def continuation(reply: str, prefix: str) -> str:
    """What follows ``prefix`` in ``reply``: after its last template tag when ``reply`` has that tag."""
    tags = re.findall(r"<[A-Z]+>", prefix)
    if not prefix or not tags or tags[-1] not in reply:
        return reply
    return reply.split(tags[-1], 1)[1]


class EmbeddedAlm(Teacher):
    role = "alm"
    model = "embedded-alm"

    def __init__(self, config: EmbeddedAlmConfig) -> None:
        super().__init__(config.batching, config)
        self.sampling: Sampling = config
        self._measured: OrderedDict[str, Measurements] = OrderedDict()

    def listen(self, ref: AudioRef) -> Measurements:
        key = ref.sha256 or str(ref.path)
        if key not in self._measured:
            wave, sr = load_audio(ref)
            self._measured[key] = measure(wave, sr)
            if len(self._measured) > 512:
                self._measured.popitem(last=False)
        return self._measured[key]

    def generate(self, requests: list[Request]) -> list[str]:
        replies = [respond(r.prompt, self.listen(r.audio) if r.audio is not None else None,
                           functools.partial(choose, sampling=self.sampling, seed=r.seed)) for r in requests]
        return [continuation(reply, r.prefix) for r, reply in zip(requests, replies, strict=True)]
