"""The LLaVA-CoT answer template: render, strict and lenient parsing, answer extraction, the trained prompt layout.

One implementation, used by validators, trainers and benchmarks alike::

    <SUMMARY> ... </SUMMARY>
    <CAPTION> ... </CAPTION>
    <REASONING> ... </REASONING>
    <CONCLUSION> ... </CONCLUSION>
"""

from __future__ import annotations

import re
import string
from collections.abc import Iterable

import msgspec

from afcot_core.records import CoT

TAGS = ("SUMMARY", "CAPTION", "REASONING", "CONCLUSION")
#: The prompt suffix that asks a model for the tagged format (training and evaluation).
COT_SUFFIX = "Output the answer with <SUMMARY>, <CAPTION>, <REASONING>, and <CONCLUSION> tags."
#: the letters of options, ``(A)`` to ``(Z)``, one per choice (MMAU has items with 8 choices)
OPTION_LETTERS = string.ascii_uppercase

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
    """Parse text that follows the template exactly: upper-case tags, in order, each once, no part empty.

    Only whitespace may surround the tagged parts, and no part may hold a template tag (in any case).
    Runs in linear time: one scan over the tags, no backtracking. Raises :class:`TemplateError`
    naming the first problem found.
    """
    marks = list(_ANY_TAG.finditer(text))
    expected = [(closing, t) for t in TAGS for closing in (False, True)]
    for i, want in enumerate(expected):
        if i >= len(marks):
            return _fail(f"missing {_tag(*want)}")
        got = (marks[i].group(1) == "/", marks[i].group(2).upper())
        if got != want:
            inside = i % 2 == 1 and got[1] != want[1]
            return _fail(f"<{want[1]}> contains a nested template tag {marks[i].group(0)}" if inside
                         else f"expected {_tag(*want)} but found {marks[i].group(0)}")
        if marks[i].group(0) != _tag(*want):
            return _fail(f"expected {_tag(*want)} but found {marks[i].group(0)}")
    if len(marks) > len(expected):
        return _fail(f"extra template tag {marks[len(expected)].group(0)} after </CONCLUSION>")
    gaps = [text[: marks[0].start()], text[marks[-1].end():]]
    gaps += [text[marks[i].end(): marks[i + 1].start()] for i in range(1, len(marks) - 1, 2)]
    if any(gap.strip() for gap in gaps):
        return _fail("text outside the four tagged parts")
    fields = {t.lower(): text[marks[2 * i].end(): marks[2 * i + 1].start()].strip() for i, t in enumerate(TAGS)}
    for name, value in fields.items():
        if not value:
            return _fail(f"<{name.upper()}> is empty")
    return CoT(**fields)


def _tag(closing: bool, name: str) -> str:
    return f"<{'/' if closing else ''}{name}>"


def _fail(message: str) -> CoT:
    raise TemplateError(message)


def parse_lenient(text: str) -> ParsedCoT:
    """Recover what can be recovered; never raises, linear in the length of ``text``.

    Tags are case-insensitive. A part runs to its own closer, so tag-like text inside a closed part
    stays part of its content; a part without a closer ends at the next opening tag (or the end).
    Text outside the tags is ignored, and for a part that appears several times the last one wins.
    """
    if not isinstance(text, str):
        return ParsedCoT()
    marks = list(_ANY_TAG.finditer(text))
    # for each mark, the index of the next closer / opener of the same name (scanning back once)
    next_close: list[int | None] = [None] * len(marks)
    next_open: list[int | None] = [None] * len(marks)
    seen_close: dict[str, int] = {}
    seen_open: dict[str, int] = {}
    for i in range(len(marks) - 1, -1, -1):
        name = marks[i].group(2).lower()
        next_close[i], next_open[i] = seen_close.get(name), seen_open.get(name)
        (seen_close if marks[i].group(1) else seen_open)[name] = i
    found: dict[str, str] = {}
    i = 0
    while i < len(marks):
        m = marks[i]
        if m.group(1):
            i += 1
            continue
        close, reopen = next_close[i], next_open[i]
        if close is not None and (reopen is None or close < reopen):
            found[m.group(2).lower()] = text[m.end(): marks[close].start()].strip()
            i = close + 1
            continue
        following = next((j for j in range(i + 1, len(marks)) if not marks[j].group(1)), None)
        end = marks[following].start() if following is not None else len(text)
        found[m.group(2).lower()] = text[m.end(): end].strip()
        i = following if following is not None else len(marks)
    return ParsedCoT(**found)


def extract_conclusion(text: str) -> str | None:
    """The content of the last CONCLUSION (case-insensitive; an unclosed one runs to the end), or None."""
    return parse_lenient(text).conclusion


def remove_option(answer: str) -> str:
    """Lower-case ``answer`` and drop a leading option tag such as ``(b)``, ``b.``, ``b)`` or ``b:``.

    Unlike the released helper, the tag must open the answer, and an answer that is only a tag is kept
    whole: an empty result would make every prediction "end with" it.
    """
    text = answer.strip().lower()
    rest = re.sub(r"^\(?[a-h][\).:]\s*", "", text, count=1).strip()
    return rest or text


def answer_in_choices(answer: str, choices: list[str]) -> bool:
    """Whether ``answer`` names one of ``choices``: as given ("restaurant") or with its option tag ("(B) restaurant").

    The tag must be the choice's own letter in the order given.
    """
    if answer in choices:
        return True
    m = re.match(r"^\(?([A-Za-z])[\).:]\s*(.+)$", answer.strip())
    if m is None:
        return False
    index = OPTION_LETTERS.index(m.group(1).upper())
    return index < len(choices) and choices[index].strip().lower() == m.group(2).strip().lower()


def format_question(question: str, choices: list[str] | None) -> str:
    """The question as the teachers see it: with one ``(A) choice`` line per option when there are choices."""
    if not choices:
        return question
    if len(choices) > len(OPTION_LETTERS):
        raise ValueError(f"at most {len(OPTION_LETTERS)} choices are supported, got {len(choices)}")
    lines = "".join(f"\n({OPTION_LETTERS[i]}) {c}" for i, c in enumerate(choices))
    return f"{question} Choose the correct option from the following options:{lines}"


REPAIR_TAIL = "</REASONING>\n<CONCLUSION>"


def repair_prefix(output: str) -> str | None:
    """Where AF2's released repair restarts an output that opened ``<reasoning>`` but never closed ``</conclusion>``.

    The output is cut before ``</reasoning>``, else at the last '.' of its first 512 characters (kept whole when
    they hold none; the released code then drops their last character), and ``</REASONING>\n<CONCLUSION>`` is
    appended. None when the output needs no repair. Tags match in any case.
    """
    low = output.lower()
    if "<reasoning>" not in low or "</conclusion>" in low:
        return None
    at = low.find("</reasoning>")
    if at >= 0:
        return output[:at] + REPAIR_TAIL
    head = output[:512].strip() if len(output) >= 512 else output
    dot = head.rfind(".")
    return (head[:dot] if dot >= 0 else head) + REPAIR_TAIL


#: the human-turn layouts a student can be trained and evaluated with (docs/interop.md, "The human turn"):
#: ``inline`` is AF-Reasoning-Eval's (``Q\n(A) x. (B) y. <suffix>``), ``model-card`` the AF2-Sound-CoT model
#: card's and the released inference example's (``Q Choose the correct option from the following
#: options:\n(A) x\n(B) y. <suffix>``, the options as the generation pipelines list them)
LAYOUTS = ("inline", "model-card")
#: what the model-card layout puts between the question and its options
CHOOSE = " Choose the correct option from the following options:"


def inline_prompt(question: str, choices: Iterable[str] | None, cot: bool, layout: str = "inline") -> str:
    """The prompt a student is trained on and evaluated with, in ``layout`` (one of :data:`LAYOUTS`); the CoT
    suffix only with ``cot``. ``inline``: ``"{question}\n(A) x. (B) y. Output the answer with <SUMMARY>, ...
    tags."``; ``model-card``: ``"{question} Choose the correct option from the following options:\n(A) x\n(B) y.
    Output the answer ..."``."""
    if layout not in LAYOUTS:
        raise ValueError(f"unknown prompt layout '{layout}'; layouts: {', '.join(LAYOUTS)}")
    options = list(choices or [])
    if len(options) > len(OPTION_LETTERS):
        raise ValueError(f"at most {len(OPTION_LETTERS)} choices can be lettered, got {len(options)}")
    text = question.strip()
    if options and layout == "inline":
        text += "\n" + " ".join(f"({OPTION_LETTERS[i]}) {c}." for i, c in enumerate(options))
    elif options:
        text += CHOOSE + "".join(f"\n({OPTION_LETTERS[i]}) {c}" for i, c in enumerate(options)) + "."
    return f"{text} {COT_SUFFIX}" if cot else text


#: the options a yes/no question without choices is given, as in AF-Reasoning-Eval's AQA-Yes/No
YES_NO = ("yes", "no")


def options_of(choices: Iterable[str] | None, answer: str) -> tuple[str, ...]:
    """The options a student sees: the item's choices, or (yes, no) for a yes/no question without choices."""
    options = tuple(choices or ())
    return options or (YES_NO if answer.strip().lower() in YES_NO else ())


def plain_answer(choices: Iterable[str] | None, answer: str, lettered: bool = False) -> str:
    """The non-CoT target: the answer as the options a student sees spell it (yes / no lower-cased), the text the
    judge matches; with ``lettered`` ``(B) text`` when it is one of them (AF-Reasoning-Eval's gold outputs)."""
    options = options_of(choices, answer)
    key = answer.strip().lower() if options == YES_NO else answer
    if key not in options:
        return answer
    return f"({OPTION_LETTERS[options.index(key)]}) {key}" if lettered else key
