"""The paper's validators: its accept rule and its format rules."""

from __future__ import annotations

import msgspec

from afcot_core.api import CoT, Evidence, Item, TemplateError, Validator, parse_strict, remove_option, render
from afcot_paper import release


class AcceptConfig(msgspec.Struct, forbid_unknown_fields=True):
    """Options of the paper's accept rule."""

    #: accept when the LLM judge says the answer is inferable, even if the prediction misses it (the paper's OR)
    use_judge: bool = True


class PaperAccept(Validator):
    """Accept when the LLM's prediction ends with the ground truth, or the LLM judge says it is inferable.

    Evidence gathered with ``fidelity = "release"`` is judged by the released expression
    (:func:`afcot_paper.release.accepts`: the prediction not stripped, the released ``remove_option``).
    """

    name = "paper-accept"
    stages = ("evidence",)

    def __init__(self, config: AcceptConfig) -> None:
        self.config = config

    def check(self, item: Item, evidence: Evidence, cot: CoT | None) -> str | None:
        if evidence.notes.get("fidelity") == "release":
            if release.accepts(evidence.prediction or "", item.answer, self.config.use_judge and evidence.judge):
                return None
            return f"prediction '{evidence.prediction}' does not end with '{item.answer}' and the judge said no"
        prediction = (evidence.prediction or "").strip().lower()
        if prediction.endswith(remove_option(item.answer)):
            return None
        if self.config.use_judge and evidence.judge:
            return None
        return f"prediction '{evidence.prediction}' does not end with '{item.answer}' and the judge said no"


class FormatConfig(msgspec.Struct, forbid_unknown_fields=True):
    """Options of the format rules."""

    #: reject a caption shorter than this many words (or "None")
    min_caption_words: int = 3
    #: reject a chain with fewer question/answer pairs after the caption
    min_sub_qas: int = 2
    #: reject an item when a teacher's caption or answer is not prose (JSON, markup, symbol soup, control bytes)
    prose: bool = True


class FormatRules(Validator):
    """Caption of at least 3 words (not "None"), at least 2 sub-QAs, the four tags, conclusion = answer."""

    name = "format"
    stages = ("evidence", "final")

    def __init__(self, config: FormatConfig) -> None:
        self.config = config

    def check(self, item: Item, evidence: Evidence, cot: CoT | None) -> str | None:
        caption = evidence.caption.strip()
        if not caption or caption.lower() == "none" or len(caption.split()) < self.config.min_caption_words:
            return f"caption '{caption}' is shorter than {self.config.min_caption_words} words"
        if len(evidence.chain) - 1 < self.config.min_sub_qas:
            return f"{len(evidence.chain) - 1} sub-question answers, at least {self.config.min_sub_qas} required"
        if self.config.prose:
            for _, answer in evidence.chain:
                if problem := not_prose(answer):
                    return f"teacher reply {answer[:40]!r} is not prose ({problem})"
        if cot is None:
            return None
        try:
            parsed = parse_strict(render(cot))
        except TemplateError as exc:
            return f"template: {exc}"
        if any(not part for part in (parsed.summary, parsed.caption, parsed.reasoning, parsed.conclusion)):
            return "template: an empty part"
        if parsed.conclusion != item.answer.strip():
            return f"conclusion '{parsed.conclusion}' is not the answer '{item.answer}'"
        for part in (parsed.summary, parsed.reasoning) if self.config.prose else ():
            if problem := not_prose(part):
                return f"CoT part {part[:40]!r} is not prose ({problem})"
        return None


def not_prose(text: str) -> str | None:
    """Why ``text`` is not a sentence a teacher would say (None when it is): JSON or markup, symbols, control bytes."""
    text = text.strip()
    if not text:
        return "empty"
    if text[0] in "{[<" or '{"' in text or '":' in text:
        return "JSON or markup"
    if any((ord(c) < 32 and c not in "\n\t") or c == "\ufffd" for c in text):
        return "control or undecodable characters"
    visible = [c for c in text if not c.isspace()]
    if sum(c.isalnum() for c in visible) < 0.6 * len(visible):
        return "mostly symbols"
    return None
