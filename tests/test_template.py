import contextlib
import json
import time

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from afcot_core.records import CoT
from afcot_core.template import (
    _ANY_TAG,
    TemplateError,
    answer_in_choices,
    extract_conclusion,
    format_question,
    parse_lenient,
    parse_strict,
    remove_option,
    render,
    repair_prefix,
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
    ("acoustic guitar", "acoustic guitar"), ("bird", "bird"), ("a dog", "a dog"), ("(h) owl", "owl"),
])
def test_remove_option(answer, expected):
    assert remove_option(answer) == expected


def test_format_question_lists_options():
    assert format_question("Q?", ["x", "y"]) == "Q? Choose the correct option from the following options:\n(A) x\n(B) y"
    assert format_question("Q?", None) == "Q?"


# part texts that may hold tag-like text, whitespace or nothing at all
tag_like = st.sampled_from(["<SUMMARY>", "</CAPTION>", "<conclusion>", "< Reasoning >", "<CAPTION", "<tag>", "<>"])
messy_part = st.lists(st.one_of(tag_like, st.text(st.characters(blacklist_categories=("Cs",)), max_size=8),
                                st.sampled_from([" ", "\n", "\t"])), max_size=6).map("".join)


@given(messy_part, messy_part, messy_part, messy_part)
def test_strict_parse_accepts_exactly_the_clean_complete_parts(s, c, r, x):
    parts = (s, c, r, x)
    text = render(CoT(summary=s, caption=c, reasoning=r, conclusion=x))
    clean = all(p.strip() and not _ANY_TAG.search(p) for p in parts)
    if clean:
        assert parse_strict(text) == CoT(summary=s.strip(), caption=c.strip(), reasoning=r.strip(),
                                         conclusion=x.strip())
    else:
        with pytest.raises(TemplateError):
            parse_strict(text)


@given(messy_part, messy_part, messy_part, messy_part)
def test_lenient_parse_keeps_tag_like_text_inside_a_closed_part(s, c, r, x):
    parts = {"summary": s, "caption": c, "reasoning": r, "conclusion": x}
    own_tag = any(m.group(2).lower() == name for name, value in parts.items() for m in _ANY_TAG.finditer(value))
    assume(not own_tag)  # a part holding its own tag cannot be told apart from a shorter part
    parsed = parse_lenient(render(CoT(**parts)))
    assert {name: getattr(parsed, name) for name in parts} == {name: v.strip() for name, v in parts.items()}


def test_lenient_parse_does_not_cut_a_part_at_a_tag_in_its_text():
    parsed = parse_lenient(render(CoT(summary="s", caption="the <CONCLUSION> tag", reasoning="r", conclusion="x")))
    assert parsed.caption == "the <CONCLUSION> tag"
    assert parsed.conclusion == "x"


S, C, R, K = ("<SUMMARY> a </SUMMARY>", "<CAPTION> b </CAPTION>", "<REASONING> c </REASONING>",
              "<CONCLUSION> d </CONCLUSION>")


@pytest.mark.parametrize("text, problem", [
    (S + "<CAPTION>  </CAPTION>" + R + K, "<CAPTION> is empty"),
    ("<SUMMARY> a <caption> x </SUMMARY>" + C + R + K, "<SUMMARY> contains a nested template tag <caption>"),
    (S + C + "<REASONING> c <CONCLUSION> e </CONCLUSION> </REASONING>" + K,
     "<REASONING> contains a nested template tag <CONCLUSION>"),
    (S + C + R + K + "<CONCLUSION> e </CONCLUSION>", "extra template tag <CONCLUSION> after </CONCLUSION>"),
    (S + R + C + K, "expected <CAPTION> but found <REASONING>"),
    (S + C + R + "<conclusion> d </CONCLUSION>", "expected <CONCLUSION> but found <conclusion>"),
    (S + C + R, "missing <CONCLUSION>"),
    ("x " + S + C + R + K, "text outside the four tagged parts"),
    (S + C + R + K + " x", "text outside the four tagged parts"),
    (S + " x " + C + R + K, "text outside the four tagged parts"),
    (S + C + " x " + R + K, "text outside the four tagged parts"),
    (S + C + R + " x " + K, "text outside the four tagged parts"),
])
def test_strict_parse_names_the_first_problem(text, problem):
    with pytest.raises(TemplateError) as err:
        parse_strict(text)
    assert str(err.value) == problem
    assert parse_strict(S + "\n" + C + " " + R + "\n\n" + K).reasoning == "c"


def test_parsers_are_linear_on_a_hostile_20_kb_reply():
    unit = "</SUMMARY><CAPTION></CAPTION><REASONING></REASONING><CONCLUSION></CONCLUSION>"
    text = "<SUMMARY>" + unit * (20_000 // len(unit)) + "x"
    started = time.perf_counter()
    with pytest.raises(TemplateError):
        parse_strict(text)
    parse_lenient(text)
    assert time.perf_counter() - started < 0.5  # the backtracking pattern took minutes on this input


def test_remove_option_drops_one_tag_only():
    assert remove_option("(a) (b) dog") == "(b) dog"


def test_format_question_letters_up_to_26_choices():
    letters = "abcdefghijklmnopqrstuvwxyz"
    assert format_question("Q?", list(letters)).endswith("\n(H) h\n(I) i\n(J) j\n(K) k\n(L) l\n(M) m\n(N) n\n(O) o\n"
                                                          "(P) p\n(Q) q\n(R) r\n(S) s\n(T) t\n(U) u\n(V) v\n(W) w\n"
                                                          "(X) x\n(Y) y\n(Z) z")
    with pytest.raises(ValueError) as err:
        format_question("Q?", [*letters, "aa"])
    assert str(err.value) == "at most 26 choices are supported, got 27"


def test_an_option_tag_past_the_choices_names_none():
    assert not answer_in_choices("(D) park", ["street", "restaurant", "park"])
    assert answer_in_choices("(H) h", list("abcdefgh")) and not answer_in_choices("(Z) h", list("abcdefgh"))
    assert answer_in_choices("(C) park", ["street", "restaurant", "park"])


def test_the_released_repair_restarts_after_the_reasoning_or_at_its_last_full_stop():
    assert repair_prefix("<summary>s</summary><reasoning>a. b</reasoning><conclusion>x") == \
        "<summary>s</summary><reasoning>a. b</REASONING>\n<CONCLUSION>"
    assert repair_prefix("<SUMMARY> x </SUMMARY><REASONING> r </reasoning><CONCLUSION> y") == \
        "<SUMMARY> x </SUMMARY><REASONING> r </REASONING>\n<CONCLUSION>"
    assert repair_prefix("<reasoning>first. second" + "x" * 600) == "<reasoning>first</REASONING>\n<CONCLUSION>"
    assert repair_prefix("  <reasoning>a. b" + "c" * 600) == "<reasoning>a</REASONING>\n<CONCLUSION>"
    assert repair_prefix("<reasoning>no stop. here") == "<reasoning>no stop</REASONING>\n<CONCLUSION>"
    # no full stop: kept whole (the released code drops the last character)
    assert repair_prefix("<reasoning>abc") == "<reasoning>abc</REASONING>\n<CONCLUSION>"
    tail = "</REASONING>\n<CONCLUSION>"
    assert repair_prefix("<reasoning>a</reasoning> b </reasoning>") == "<reasoning>a" + tail  # the first closer
    assert repair_prefix("</reasoning><reasoning> a") == tail  # a closer at the very start
    assert repair_prefix("<reasoning>one. two. three") == "<reasoning>one. two" + tail  # the last full stop
    assert repair_prefix(". <reasoning> x") == tail  # a full stop at the very start
    assert repair_prefix("  <reasoning> x  ") == "  <reasoning> x  " + tail  # short: as it is, not stripped
    padded = "<reasoning>" + "x" * 490 + " " * 11  # exactly 512 characters: stripped, no full stop in them
    assert repair_prefix(padded) == padded.strip() + tail
    long = "<reasoning>a." + "x" * 499 + ".more"  # a full stop at index 512 lies past the first 512 characters
    assert len(long[:512]) == 512 and long[512] == "."
    assert repair_prefix(long) == "<reasoning>a" + tail
    for done in ("<reasoning>r</reasoning><conclusion>x</conclusion>", "<REASONING> a </REASONING><CONCLUSION> x "
                 "</CONCLUSION>", "just an answer", "<summary>s</summary>"):
        assert repair_prefix(done) is None


def test_remove_option_never_empties_an_answer():
    assert remove_option("(B)") == "(b)"
    assert remove_option("(b) ") == "(b)"
    assert remove_option("club)") == "club)"


@pytest.mark.parametrize("answer, ok", [
    ("restaurant", True), ("(B) restaurant", True), ("b. Restaurant", True), ("(A) restaurant", False),
    ("(E) restaurant", False), ("cafe", False), ("(B)", False),
])
def test_an_answer_names_a_choice_as_given_or_with_its_option_tag(answer, ok):
    assert answer_in_choices(answer, ["street", "restaurant", "park"]) is ok


def test_a_manifest_accepts_option_tagged_answers_and_names_a_wrong_one(tmp_path):
    from afcot_io.manifest import read_manifest

    from afcot_core.errors import BadInput

    manifest = tmp_path / "m.jsonl"
    line = {"id": "a", "audio": "a.flac", "question": "Where?", "choices": ["street", "restaurant"]}
    manifest.write_text(json.dumps({**line, "answer": "(B) restaurant"}) + "\n")
    assert read_manifest(manifest)[0].answer == "(B) restaurant"  # kept as given: it becomes the CONCLUSION
    manifest.write_text(json.dumps({**line, "answer": "(A) restaurant"}) + "\n")
    with pytest.raises(BadInput, match=r"m.jsonl:1: answer '\(A\) restaurant' is not one of the choices"):
        read_manifest(manifest)


def test_the_lenient_parser_skips_stray_closers_and_lets_a_reopened_part_win():
    assert parse_lenient("</SUMMARY><CAPTION> b </CAPTION>").caption == "b"
    assert parse_lenient("</REASONING> x </SUMMARY> <CONCLUSION> y").conclusion == "y"
    parsed = parse_lenient("<CAPTION> a <CAPTION> b </CAPTION><SUMMARY> s")
    assert (parsed.caption, parsed.summary) == ("b", "s")
    assert parse_lenient("<summary> a <SUMMARY> b </Summary>").summary == "b"


def test_the_plain_target_is_the_answer_text_the_judge_reads_and_lettered_on_request():
    """A student trained on ``(C) hiss`` learns to open every answer with one letter and scores at chance
    (docs/performance.md): the plain target is the answer's text, yes / no lower-cased as the options spell it."""
    from afcot_core.template import plain_answer

    choices = ["bark", "siren", "hiss"]
    assert plain_answer(choices, "hiss") == "hiss"
    assert plain_answer(None, "Yes") == "yes"  # a yes/no question is given the options (A) yes (B) no
    assert plain_answer(None, "a dog") == "a dog"  # an open answer as it is
    assert plain_answer(choices, "hiss", lettered=True) == "(C) hiss"
    assert plain_answer(None, "No", lettered=True) == "(B) no"
    assert plain_answer(None, "a dog", lettered=True) == "a dog"  # no options: no letter to give
    # only yes / no are matched whatever their case; a choice is spelled as the item spells it
    assert plain_answer(["Dog", "Cat"], "Dog", lettered=True) == "(A) Dog"
    assert plain_answer(["yes", "no", "maybe"], "Maybe", lettered=True) == "Maybe"


def test_the_options_a_student_sees_are_the_choices_else_yes_no_for_a_yes_no_answer_else_none():
    from afcot_core.template import YES_NO, options_of

    assert options_of(["bark", "hiss"], "yes") == ("bark", "hiss")
    assert options_of(None, " No ") == options_of([], "YES") == YES_NO
    assert options_of(None, "a dog") == ()  # an open question: no options in its prompt
