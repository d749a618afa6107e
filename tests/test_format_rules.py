"""The paper's format rules (``format``): the caption, the sub-QAs, prose teacher replies and the composed CoT.

Rules, so tested as rules: each case names what is rejected and the exact reason the record keeps.
"""

import pytest
from afcot_paper.validators import FormatConfig, FormatRules, not_prose

from afcot_core.protocols import Evidence
from afcot_core.records import AudioRef, CoT, Item

ITEM = Item(id="q1", audio=AudioRef(path="unused.flac"), question="What preys on the gull?", answer="(B) a hawk",
            kind="aqa", choices=["a fox", "a hawk"])
PAIRS = [("Is a gull calling?", "Yes, a gull is calling."), ("What preys on gulls?", "Hawks prey on gulls.")]
COT = CoT(summary="I check the bird, then its predators.", caption="A gull calls twice over waves.",
          reasoning="A gull calls; hawks prey on gulls.", conclusion="(B) a hawk")


def check(caption="A gull calls twice over waves.", pairs=PAIRS, cot=None, **config):
    return FormatRules(FormatConfig(**config)).check(ITEM, Evidence([("Caption?", caption), *pairs]), cot)


@pytest.mark.parametrize("caption, words, reason", [
    ("A gull calls.", 3, None),  # exactly the minimum
    ("A gull.", 3, "caption 'A gull.' is shorter than 3 words"),
    ("   ", 3, "caption '' is shorter than 3 words"),
    ("None", 1, "caption 'None' is shorter than 1 words"),  # the ALM's "None" is no caption, whatever the minimum
    ("NONE", 1, "caption 'NONE' is shorter than 1 words"),
    ("Gull.", 1, None),
])
def test_a_caption_needs_its_minimum_of_words_and_none_is_no_caption(caption, words, reason):
    assert check(caption, min_caption_words=words) == reason


def test_the_chain_needs_its_minimum_of_sub_question_answers():
    assert check(pairs=PAIRS[:1]) == "1 sub-question answers, at least 2 required"
    assert check(pairs=[]) == "0 sub-question answers, at least 2 required"
    assert check(pairs=PAIRS[:1], min_sub_qas=1) is None


def test_a_teacher_reply_that_is_not_prose_rejects_naming_its_first_40_characters():
    reply = '{"answer": "a hawk", "confidence": 0.9, "why": "it is a raptor"}'
    assert check(pairs=[PAIRS[0], ("What preys on gulls?", reply)]) == \
        f"teacher reply {reply[:40]!r} is not prose (JSON or markup)"
    assert check(pairs=[PAIRS[0], ("What preys on gulls?", reply)], prose=False) is None


def test_a_composed_cot_passes_when_its_conclusion_is_the_answer_and_its_parts_are_prose():
    assert check(cot=COT) is None
    wrong = CoT(summary=COT.summary, caption=COT.caption, reasoning=COT.reasoning, conclusion="(A) a fox")
    assert check(cot=wrong) == "conclusion '(A) a fox' is not the answer '(B) a hawk'"
    empty = CoT(summary=" ", caption=COT.caption, reasoning=COT.reasoning, conclusion=COT.conclusion)
    assert check(cot=empty).startswith("template: ")


def test_a_composed_cot_whose_summary_or_reasoning_is_not_prose_rejects_unless_prose_is_off():
    reasoning = '{"reasoning": "A gull calls; hawks prey on gulls and so the answer is a hawk."}'
    cot = CoT(summary=COT.summary, caption=COT.caption, reasoning=reasoning, conclusion=COT.conclusion)
    assert check(cot=cot) == f"CoT part {reasoning[:40]!r} is not prose (JSON or markup)"
    assert check(cot=cot, prose=False) is None


@pytest.mark.parametrize("text, problem", [
    ("", "empty"),
    ("  \n ", "empty"),
    ("A gull calls twice over the waves.", None),
    ("Xylophone-like notes ring out.", None),  # a sentence may open with any letter
    ('{"answer": "a hawk"}', "JSON or markup"),
    ("[a hawk]", "JSON or markup"),
    ("<b>A hawk calls</b>", "JSON or markup"),
    ('It says {"answer', "JSON or markup"),  # an object opened mid-sentence
    ('The key "answer": a hawk', "JSON or markup"),  # a key mid-sentence
    ("A gull calls.\n\tTwice.", None),  # newline and tab are prose
    ("A gull\x07 calls twice.", "control or undecodable characters"),
    ("A gull \ufffd calls twice.", "control or undecodable characters"),
    ("abc!! def!!", None),  # 6 of 10 visible characters letters or digits: the threshold, still prose
    ("ab!!! cd!!!", "mostly symbols"),
    ("?!?! ?!?! a", "mostly symbols"),
])
def test_prose_is_a_sentence_not_json_markup_control_bytes_or_symbols(text, problem):
    assert not_prose(text) == problem
