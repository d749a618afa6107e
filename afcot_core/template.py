"""The LLaVA-CoT answer template: render, strict and lenient parsing, answer extraction.

One implementation, used by validators, trainers and benchmarks alike::

    <SUMMARY> ... </SUMMARY>
    <CAPTION> ... </CAPTION>
    <REASONING> ... </REASONING>
    <CONCLUSION> ... </CONCLUSION>
"""

from __future__ import annotations

import re

import msgspec

from afcot_core.records import CoT

TAGS = ("SUMMARY", "CAPTION", "REASONING", "CONCLUSION")
#: The prompt suffix that asks a model for the tagged format (training and evaluation).
COT_SUFFIX = "Output the answer with <SUMMARY>, <CAPTION>, <REASONING>, and <CONCLUSION> tags."
OPTION_LETTERS = "ABCDEFG"

_STRICT = re.compile(
    r"\A\s*"
    + r"\s*".join(rf"<{t}>(?P<{t.lower()}>.*?)</{t}>" for t in TAGS)
    + r"\s*\Z",
    re.DOTALL,
)
_ANY_TAG = re.compile(r"<\s*(/?)\s*(summary|caption|reasoning|conclusion)\s*>", re.IGNORECASE)


class TemplateError(ValueError):
    """Text that does not follow the strict template; the message says what is wrong."""


class ParsedCoT(msgspec.Struct, frozen=True):
    """What a lenient parse recovered; a part that was not found is ``None``."""

    summary: str | None = None
    caption: str | None = None
    reasoning: str | None = None
    conclusion: str | None = None

    @property
    def complete(self) -> bool:
        return None not in (self.summary, self.caption, self.reasoning, self.conclusion)


def render(cot: CoT) -> str:
    """The tagged text of ``cot``: four parts joined by newlines, a space inside each tag."""
    parts = (cot.summary, cot.caption, cot.reasoning, cot.conclusion)
    return "\n".join(f"<{t}> {p.strip()} </{t}>" for t, p in zip(TAGS, parts, strict=True))


def parse_strict(text: str) -> CoT:
    """Parse text that follows the template exactly (upper-case tags, in order, each once).

    Raises :class:`TemplateError` naming the first problem found.
    """
    m = _STRICT.match(text)
    if m is None:
        raise TemplateError(_diagnose(text))
    fields = {k: v.strip() for k, v in m.groupdict().items()}
    for name, value in fields.items():
        if _ANY_TAG.search(value):
            raise TemplateError(f"<{name.upper()}> contains a nested template tag")
    return CoT(**fields)


def _diagnose(text: str) -> str:
    found = [(m.group(1) == "/", m.group(2)) for m in _ANY_TAG.finditer(text)]
    expected = [(closing, t) for t in TAGS for closing in (False, True)]
    for i, want in enumerate(expected):
        if i >= len(found):
            return f"missing {'</' if want[0] else '<'}{want[1]}>"
        if found[i] != want:
            got = f"{'</' if found[i][0] else '<'}{found[i][1]}>"
            return f"expected {'</' if want[0] else '<'}{want[1]}> but found {got}"
    if len(found) > len(expected):
        return "extra template tags after </CONCLUSION>"
    return "text outside the four tagged parts"


def parse_lenient(text: str) -> ParsedCoT:
    """Recover what can be recovered; never raises.

    Tags are case-insensitive, a missing closer ends at the next opening tag (or the end), text
    outside the tags is ignored, and for a part that appears several times the last one wins.
    """
    if not isinstance(text, str):
        return ParsedCoT()
    found: dict[str, str] = {}
    marks = list(_ANY_TAG.finditer(text))
    for i, m in enumerate(marks):
        if m.group(1):
            continue
        name = m.group(2).lower()
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        found[name] = text[m.end() : end].strip()
    return ParsedCoT(**found)


def extract_conclusion(text: str) -> str | None:
    """The content of the last CONCLUSION (case-insensitive; an unclosed one runs to the end), or None."""
    return parse_lenient(text).conclusion


def remove_option(answer: str) -> str:
    """Lower-case ``answer`` and drop a leading option tag such as ``(b)``, ``b.``, ``b)`` or ``b:``."""
    text = answer.strip().lower()
    return re.sub(r"^\(?[a-g][\).:]\s*", "", text, count=1).strip() if re.match(r"^\(?[a-g][\).:]", text) else text


def format_question(question: str, choices: list[str] | None) -> str:
    """The question as the teachers see it: with one ``(A) choice`` line per option when there are choices."""
    if not choices:
        return question
    if len(choices) > len(OPTION_LETTERS):
        raise ValueError(f"at most {len(OPTION_LETTERS)} choices are supported, got {len(choices)}")
    lines = "".join(f"\n({OPTION_LETTERS[i]}) {c}" for i, c in enumerate(choices))
    return f"{question} Choose the correct option from the following options:{lines}"


def student_prompt(question: str, choices: list[str] | None, cot: bool = True) -> str:
    """The prompt a student model sees, as in AF-Reasoning-Eval and AF-CoT-Train.

    ``"{question}\n(A) x. (B) y. Output the answer with <SUMMARY>, ... tags."``; options inline, the
    CoT suffix when ``cot``.
    """
    text = question.strip()
    if choices:
        text += "\n" + " ".join(f"({OPTION_LETTERS[i]}) {c}." for i, c in enumerate(choices))
    return f"{text} {COT_SUFFIX}" if cot else text
