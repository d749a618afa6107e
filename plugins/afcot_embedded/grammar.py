"""The question grammar of the embedded world: properties of a sound, clauses about them, sub-questions.

Both teachers understand this language: the ALM answers sub-questions about properties, the scripted
LLM splits questions into clauses and reads values back out of the ALM's answers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

#: property → its possible categorical values (numeric properties have none)
VALUES: dict[str, tuple[str, ...]] = {
    "texture": ("tonal", "noise-like", "impulsive"),
    "pitch_direction": ("rising", "falling", "steady"),
    "pitch_height": ("high", "medium", "low"),
    "loudness_trend": ("louder", "quieter", "same level"),
    "loudness_level": ("loud", "moderate", "quiet"),
    "brightness": ("bright", "balanced", "dark"),
    "regularity": ("evenly spaced", "irregular"),
    "tempo": ("fast", "slow"),
    "envelope": ("decays", "sustained"),
    "modulation": ("steady", "regular swells", "irregular swells"),
    "duration": (),
    "event_count": (),
}

#: the sub-question the LLM asks the ALM about each property
SUB_QUESTIONS: dict[str, str] = {
    "texture": "Is the sound tonal, noise-like, or made of short impulsive events?",
    "pitch_direction": "Is the pitch rising, falling, or steady?",
    "pitch_height": "Is the pitch high, medium, or low?",
    "loudness_trend": "Does the sound get louder, get quieter, or stay at the same level over time?",
    "loudness_level": "How loud is the sound overall?",
    "brightness": "Is the timbre bright, balanced, or dark?",
    "regularity": "Are the separate sound events evenly spaced or irregular?",
    "tempo": "Do the sound events repeat fast or slow?",
    "envelope": "Does the sound start sharply and decay, or is it sustained?",
    "modulation": "Does the level stay steady, or does it swell regularly or irregularly?",
    "duration": "How long does the sound last?",
    "event_count": "How many separate sound events are there?",
}

# keyword patterns that identify the property a question or clause is about (checked in order)
_PROPERTY_PATTERNS: tuple[tuple[str, str], ...] = (
    ("modulation", r"swell"),
    ("event_count", r"how many|more than \d+|fewer than \d+|number of"),
    ("regularity", r"evenly spaced|irregular|regularly spaced"),
    ("tempo", r"\bfast\b|\bslow\b|repeat"),
    ("pitch_direction",
     r"pitch (is |go(es)? |stays )?(rising|falling|steady|rise|fall)|rising, falling|pitch rises|pitch falls"),
    ("pitch_height", r"high-pitched|low-pitched|pitch high|high, medium|how high|middle range"),
    ("loudness_trend", r"louder|quieter|same level"),
    ("loudness_level", r"how loud|\bloud\b|\bquiet\b"),
    ("brightness", r"bright|dark|timbre"),
    ("envelope", r"decay|sustained|fade"),
    ("duration", r"how long|longer than|shorter than|last"),
    ("texture", r"tonal|noise-like|impulsive"),
)


def property_of(text: str) -> str | None:
    """The property a sub-question or clause asks about, or None when it is not understood."""
    low = text.lower()
    for prop, pattern in _PROPERTY_PATTERNS:
        if re.search(pattern, low):
            return prop
    return None


@dataclass(frozen=True)
class Clause:
    """A claim about one property: ``value`` for categorical ones, ``op`` and ``number`` for numeric ones."""

    prop: str
    value: str = ""
    op: str = ""
    number: float = 0.0

    def holds(self, observed: str | float) -> bool:
        if self.op == ">":
            return float(observed) > self.number
        if self.op == "<":
            return float(observed) < self.number
        return observed == self.value

    def question(self) -> str:
        """Yes/no form, e.g. "is the pitch rising"."""
        return _QUESTION_FORMS[self.prop](self)

    def statement(self) -> str:
        """Declarative form for answer options, e.g. "the pitch rises"."""
        return _STATEMENT_FORMS[self.prop](self)


def _num(c: Clause) -> str:
    return f"{c.number:g}"


_QUESTION_FORMS = {
    "texture": lambda c: {"tonal": "is it a tonal sound", "noise-like": "is it noise-like",
                          "impulsive": "is it made of short impulsive events"}[c.value],
    "pitch_direction": lambda c: f"is the pitch {c.value}",
    "pitch_height": lambda c: {"high": "is it high-pitched", "low": "is it low-pitched",
                               "medium": "is the pitch in the middle range"}[c.value],
    "loudness_trend": lambda c: {"louder": "does it get louder towards the end",
                                 "quieter": "does it get quieter towards the end",
                                 "same level": "does it stay at the same level"}[c.value],
    "loudness_level": lambda c: {"loud": "is it loud", "moderate": "is it moderately loud",
                                 "quiet": "is it quiet"}[c.value],
    "brightness": lambda c: f"is the timbre {c.value}",
    "regularity": lambda c: f"are the events {c.value}",
    "tempo": lambda c: f"do the events repeat {c.value}",
    "envelope": lambda c: {"decays": "does it start sharply and decay",
                           "sustained": "is it sustained"}[c.value],
    "modulation": lambda c: {"steady": "does its level stay steady without swells",
                             "regular swells": "does it swell regularly",
                             "irregular swells": "does it swell irregularly"}[c.value],
    "duration": lambda c: f"does it last {'longer' if c.op == '>' else 'shorter'} than {_num(c)} seconds",
    "event_count": lambda c: f"are there {'more' if c.op == '>' else 'fewer'} than {_num(c)} separate events",
}

_STATEMENT_FORMS = {
    "pitch_direction": lambda c: {"rising": "the pitch rises", "falling": "the pitch falls",
                                  "steady": "the pitch stays steady"}[c.value],
    "loudness_trend": lambda c: {"louder": "it gets louder", "quieter": "it gets quieter",
                                 "same level": "it stays at the same level"}[c.value],
    "regularity": lambda c: f"the events are {c.value}",
    "tempo": lambda c: f"the events repeat {c.value}",
}


def parse_clause(text: str) -> Clause | None:
    """Read a clause (question or statement form) back; None when it is not understood."""
    prop = property_of(text)
    if prop is None:
        return None
    low = text.lower()
    if prop in ("duration", "event_count"):
        m = re.search(r"(more|longer|fewer|shorter) than (\d+(?:\.\d+)?)", low)
        if not m:
            return None
        return Clause(prop, op=">" if m.group(1) in ("more", "longer") else "<", number=float(m.group(2)))
    value = find_value(prop, low)
    return Clause(prop, value) if value else None


_VALUE_SYNONYMS = {
    "pitch_direction": {"rising": r"ris(es|ing)", "falling": r"fall(s|ing)", "steady": r"steady"},
    "pitch_height": {"high": r"\bhigh", "medium": r"medium|middle", "low": r"\blow"},
    "loudness_trend": {"louder": r"louder", "quieter": r"quieter", "same level": r"same level"},
    "envelope": {"decays": r"decay", "sustained": r"sustained"},
    "loudness_level": {"loud": r"(?<!moderately )\bloud\b", "moderate": r"moderate", "quiet": r"\bquiet\b"},
    "modulation": {"regular swells": r"(?<!ir)regular(ly)? swell|swells regularly|swell regularly",
                   "irregular swells": r"irregular(ly)? swell|swells irregularly|swell irregularly",
                   "steady": r"steady"},
}


def find_value(prop: str, text: str) -> str | None:
    """The value of ``prop`` named in ``text`` (first match in text order), or None."""
    low = text.lower()
    patterns = _VALUE_SYNONYMS.get(prop) or {v: rf"\b{re.escape(v)}\b" for v in VALUES[prop]}
    hits = [(m.start(), value) for value, pattern in patterns.items() if (m := re.search(pattern, low))]
    return min(hits)[1] if hits else None


def read_number(prop: str, text: str) -> float | None:
    """The number an answer about ``duration`` or ``event_count`` states, or None."""
    m = re.search(r"(\d+(?:\.\d+)?)", text)
    return float(m.group(1)) if m and prop in ("duration", "event_count") else None


def split_clauses(question: str) -> list[str]:
    """Split a compound question ("Is A, and is B?") into its clause texts."""
    body = question.strip().rstrip("?").strip()
    parts = re.split(r",\s*(?:and\s+)?|\s+and\s+(?=(?:is|are|does|do)\b)", body)
    return [p.strip() for p in parts if p and p.strip()]


def join_clauses(clauses: list[str]) -> str:
    """The question asking all ``clauses`` ("Is A, and is B?")."""
    text = clauses[0] if len(clauses) == 1 else ", ".join(clauses[:-1]) + ", and " + clauses[-1]
    return text[0].upper() + text[1:] + "?"


def option_clauses(option: str) -> list[Clause | None]:
    """The clauses of an answer option ("the pitch rises and it gets quieter"); None where not understood."""
    return [parse_clause(part) for part in re.split(r"\band\b", option)]


def join_statements(statements: list[str]) -> str:
    return " and ".join(statements)
