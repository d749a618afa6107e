"""The MMAU/MMAR matcher on the edge cases of spec/BENCHMARKS.md §1 and §2.6."""

from __future__ import annotations

import pytest
from afcot_benchmarks.common import choices_of, split_letter
from afcot_benchmarks.matching import Matcher, string_match, tokens
from hypothesis import given
from hypothesis import strategies as st

from afcot_core.errors import BadInput

PEOPLE = ["Man", "Woman", "Child", "Robot"]
KEYS = ["C major", "A minor", "G major", "E minor"]


def test_tokens_are_lowercased_word_sets():
    assert tokens("1.63 seconds") == {"1", "63", "seconds"}
    assert tokens("A#") == {"a"}
    assert tokens("Man, man; MAN!") == {"man"}
    assert tokens("Man_speaking") == {"man_speaking"}


@pytest.mark.parametrize("prediction", ["Man", "MAN!!!", "man.", "It's a man speaking", "  man\n"])
def test_case_punctuation_and_order_are_ignored(prediction):
    assert string_match("Man", prediction, PEOPLE)


@pytest.mark.parametrize("prediction", ["Woman", "Human", "A", "(A)", "a", "", "   ", "!!!", "Man or Woman",
                                        "Man_speaking", "the man, not the robot"])
def test_wrong_bare_letter_several_choices_and_empty(prediction):
    assert not string_match("Man", prediction, PEOPLE)


def test_letters_only_count_when_the_answer_is_a_letter():
    choices = ["A", "B", "C", "D"]
    assert string_match("B", "B", choices)
    assert string_match("B", "(B)", choices)
    assert not string_match("B", "B or C", choices)
    assert not string_match("B", "(A) B", choices)


def test_option_letter_collides_with_a_wrong_choice_word():
    assert not string_match("C major", "(A) C major", KEYS)
    assert string_match("C major", "Answer: C major", KEYS)
    assert string_match("C major", "(B) C major", KEYS)


def test_wrong_choice_that_is_a_subset_of_the_answer():
    sports = ["Table Tennis", "Tennis", "Badminton"]
    assert string_match("Table Tennis", "table tennis", sports)
    assert string_match("Tennis", "tennis", ["Tennis", "Table Tennis", "Golf"])
    assert not string_match("Tennis", "Table tennis", ["Tennis", "Table Tennis", "Golf"])
    assert not string_match("Table Tennis", "tennis", sports)


def test_numbers_need_every_answer_token():
    durations = ["1.63 seconds", "2.5 seconds", "3 seconds"]
    assert string_match("1.63 seconds", "1.63 seconds", durations)
    assert not string_match("1.63 seconds", "1.63", durations)
    assert not string_match("1.63 seconds", "1.63s", durations)


def test_unicode_words_and_lowercasing():
    instruments = ["钢琴", "小提琴", "吉他"]
    assert string_match("钢琴", "答案：钢琴", instruments)
    assert not string_match("钢琴", "答案是钢琴", instruments)  # one Han run is one token
    assert string_match("Über", "ÜBER", ["Über", "Unter"])
    assert not string_match("Man", "ｍａｎ", PEOPLE)  # no NFKC folding, as upstream


def test_duplicate_and_empty_choices_are_harmless():
    assert string_match("fourteen", "fourteen", ["four", "nine", "fourteen", "fourteen"])
    assert string_match("3", "3", ["2", "3", "4", "5", ""])
    assert string_match(" Jazz ", "jazz", [" Jazz ", "Rock"])


def test_a_string_of_choices_is_refused_and_decoded_by_the_loader():
    with pytest.raises(TypeError):
        Matcher("Man", "Man")  # type: ignore[arg-type]
    assert choices_of({"choices": '["Man", "Woman"]'}, "x") == ("Man", "Woman")
    with pytest.raises(BadInput, match=r"x\.choices"):
        choices_of({"choices": "Man, Woman"}, "x")


_word = st.text(alphabet="abcdefgh", min_size=1, max_size=4)


@given(answer=st.lists(_word, min_size=1, max_size=3), others=st.lists(st.lists(_word, min_size=1, max_size=3),
                                                                        max_size=4))
def test_the_answer_text_always_matches_itself(answer, others):
    choices = [" ".join(answer)] + [" ".join(o) for o in others]
    assert string_match(choices[0], choices[0], choices)


@given(answer=st.lists(_word, min_size=1, max_size=3), extra=_word)
def test_a_token_only_a_wrong_choice_has_fails(answer, extra):
    text = " ".join(answer)
    if extra in answer:
        return
    assert not string_match(text, f"{text} {extra}", [text, f"{extra} zz"])


@pytest.mark.parametrize(("text", "bare", "expected"), [
    ("(b) harbour", True, (1, "harbour")), ("B) x", True, (1, "x")), ("b. x", True, (1, "x")),
    ("b", True, (1, "")), ("b", False, (None, "b")), ("(e) x", True, (None, "(e) x")),
    ("a dog barks", True, (None, "a dog barks")), ("( C )", True, (2, "")),
])
def test_split_letter(text, bare, expected):
    assert split_letter(text, 4, bare) == expected
