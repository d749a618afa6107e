import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from afcot_core.records import CoT
from afcot_core.template import (
    TemplateError,
    extract_conclusion,
    format_question,
    parse_lenient,
    parse_strict,
    remove_option,
    render,
)

# part texts: no angle brackets (so no tags), stripped, non-empty
part = st.text(st.characters(blacklist_characters="<>", blacklist_categories=("Cs",)), min_size=1).map(
    str.strip).filter(bool)


@given(part, part, part, part)
def test_render_then_strict_parse_round_trips(s, c, r, x):
    cot = CoT(summary=s, caption=c, reasoning=r, conclusion=x)
    assert parse_strict(render(cot)) == cot
    assert parse_lenient(render(cot)).conclusion == x


@given(st.text())
def test_lenient_parse_and_extraction_never_raise(text):
    parsed = parse_lenient(text)
    assert parsed.conclusion is None or isinstance(parsed.conclusion, str)
    extract_conclusion(text)


@given(st.text())
def test_strict_parse_raises_only_template_errors(text):
    with contextlib.suppress(TemplateError):
        parse_strict(text)


def test_render_has_the_paper_layout():
    text = render(CoT(summary="s", caption="c", reasoning="r", conclusion="(B) dog"))
    assert text == ("<SUMMARY> s </SUMMARY>\n<CAPTION> c </CAPTION>\n<REASONING> r </REASONING>\n"
                    "<CONCLUSION> (B) dog </CONCLUSION>")


@pytest.mark.parametrize("text, problem", [
    ("<SUMMARY> a </SUMMARY><CAPTION> b </CAPTION><REASONING> c </REASONING>", "missing <CONCLUSION>"),
    ("<summary> a </summary><caption> b </caption><reasoning> c </reasoning><conclusion> d </conclusion>",
     "expected <SUMMARY>"),
    ("<CAPTION> b </CAPTION><SUMMARY> a </SUMMARY><REASONING> c </REASONING><CONCLUSION> d </CONCLUSION>",
     "expected <SUMMARY> but found <CAPTION>"),
    ("<SUMMARY> a </SUMMARY><CAPTION> b </CAPTION><REASONING> c </REASONING><CONCLUSION> d </CONCLUSION> tail",
     "outside"),
])
def test_strict_parse_names_the_problem(text, problem):
    with pytest.raises(TemplateError, match=problem):
        parse_strict(text)


def test_lenient_parse_handles_case_missing_closers_and_trailing_text():
    text = "<summary> plan <caption> a dog barks </CAPTION> <Reasoning> loud\n<conclusion> (A) dog  and more"
    parsed = parse_lenient(text)
    assert parsed.summary == "plan"
    assert parsed.caption == "a dog barks"
    assert parsed.reasoning == "loud"
    assert parsed.conclusion == "(A) dog  and more"
    assert parsed.complete


def test_extraction_takes_the_last_conclusion():
    assert extract_conclusion("<CONCLUSION> a </CONCLUSION> then <CONCLUSION> b </CONCLUSION>") == "b"
    assert extract_conclusion("no tags at all") is None


@pytest.mark.parametrize("answer, expected", [
    ("(B) restaurant", "restaurant"), ("b. Restaurant", "restaurant"), ("C) yes", "yes"), ("d: no", "no"),
    ("acoustic guitar", "acoustic guitar"), ("bird", "bird"), ("a dog", "a dog"),
])
def test_remove_option(answer, expected):
    assert remove_option(answer) == expected


def test_format_question_lists_options():
    assert format_question("Q?", ["x", "y"]) == "Q? Choose the correct option from the following options:\n(A) x\n(B) y"
    assert format_question("Q?", None) == "Q?"
