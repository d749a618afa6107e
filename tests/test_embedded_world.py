"""The embedded world's grammar, clips, questions and item source: exact strings, boundaries and seeded draws."""

from __future__ import annotations

import collections

import msgspec
import numpy as np
import pytest
from afcot_embedded.grammar import (
    SUB_QUESTIONS,
    VALUES,
    Clause,
    find_value,
    join_clauses,
    join_statements,
    option_clauses,
    parse_clause,
    property_of,
    read_number,
    split_clauses,
)
from afcot_embedded.sampling import choose
from afcot_embedded.source import EmbeddedSource, EmbeddedSourceConfig, make_item
from afcot_embedded.world import (
    SAMPLE_RATE,
    Clip,
    _events,
    _negate,
    _ontology_sampler,
    _poisson_times,
    _smooth_noise,
    _true_clause,
    aqa_question,
    classification_question,
    close_negatives,
    leaf_classes,
    synthesize,
)

from afcot_core.api import Sampling, audio_ref_from_wave


def rng(*seed: int) -> np.random.Generator:
    return np.random.default_rng(list(seed))


def clip(label: str, **truth) -> Clip:
    """A clip with a hand-written truth (the questions read only the truth)."""
    return Clip(label, np.zeros(1, dtype=np.float32), truth)


CHIRP = {"texture": "tonal", "pitch_direction": "rising", "envelope": "sustained", "loudness_trend": "quieter",
         "duration": 2.75}
TICKS = {"texture": "impulsive", "tempo": "fast", "regularity": "evenly spaced", "brightness": "bright",
         "event_count": 15.0, "duration": 2.75}
NUMERIC_CLAUSES = [Clause("duration", op=">", number=2.0), Clause("duration", op="<", number=3.0),
                   Clause("duration", op=">", number=2.5), Clause("event_count", op=">", number=4.0),
                   Clause("event_count", op="<", number=12.0)]
CATEGORICAL_CLAUSES = [Clause(p, v) for p, values in VALUES.items() for v in values]


def holds_all(question: str, truth: dict) -> list[bool]:
    """Whether each clause of a yes/no question holds for ``truth`` (every clause must parse)."""
    clauses = [parse_clause(part) for part in split_clauses(question)]
    assert None not in clauses, question
    return [c.holds(truth[c.prop]) for c in clauses]


# --- grammar: which property a text is about --------------------------------------------------------

@pytest.mark.parametrize(("text", "prop"), [
    ("Does its level swell?", "modulation"),
    ("How many separate events are there?", "event_count"),
    ("are there more than 3 events", "event_count"),
    ("are there fewer than 12 events", "event_count"),
    ("what is the number of clicks", "event_count"),
    ("are the events evenly spaced", "regularity"),
    ("are they irregular", "regularity"),
    ("are they regularly spaced", "regularity"),
    ("is it fast", "tempo"),
    ("is it slow", "tempo"),
    ("how often do they repeat", "tempo"),
    ("the pitch is rising", "pitch_direction"),
    ("the pitch goes falling", "pitch_direction"),
    ("does the pitch go rise", "pitch_direction"),
    ("is the pitch steady", "pitch_direction"),
    ("rising, falling, or neither", "pitch_direction"),
    ("is it high-pitched", "pitch_height"),
    ("is it low-pitched", "pitch_height"),
    ("is the pitch high", "pitch_height"),
    ("high, medium or low", "pitch_height"),
    ("how high is it", "pitch_height"),
    ("in the middle range", "pitch_height"),
    ("does it get louder", "loudness_trend"),
    ("does it get quieter", "loudness_trend"),
    ("does it stay at the same level", "loudness_trend"),
    ("HOW LOUD IS IT", "loudness_level"),
    ("is it loud", "loudness_level"),
    ("is it quiet", "loudness_level"),
    ("is it bright", "brightness"),
    ("is it dark", "brightness"),
    ("what is its timbre", "brightness"),
    ("does it decay", "envelope"),
    ("is it sustained", "envelope"),
    ("does it fade", "envelope"),
    ("how long is it", "duration"),
    ("is it longer than a breath", "duration"),
    ("is it shorter than a breath", "duration"),
    ("does it last", "duration"),
    ("is it tonal", "texture"),
    ("is it noise-like", "texture"),
    ("is it impulsive", "texture"),
])
def test_a_text_is_about_the_property_its_keywords_name(text, prop):
    assert property_of(text) == prop


def test_keywords_are_checked_in_order_and_unknown_texts_have_no_property():
    assert property_of("does the steady level swell irregularly") == "modulation"  # not regularity, not pitch
    assert property_of("are there more than 3 fast events") == "event_count"  # before tempo
    assert property_of("is the loud part louder") == "loudness_trend"  # before loudness_level
    assert property_of("is it a dark tonal sound") == "brightness"  # before texture
    assert property_of("is it loudly") is None and property_of("Tell me a joke.") is None


def test_every_sub_question_is_about_its_own_property():
    assert set(SUB_QUESTIONS) == set(VALUES)
    for prop, question in SUB_QUESTIONS.items():
        assert property_of(question) == prop


# --- grammar: clauses -------------------------------------------------------------------------------

def test_a_categorical_clause_holds_only_for_its_own_value():
    c = Clause("pitch_direction", "rising")
    assert (c.op, c.number) == ("", 0.0) and Clause("texture").value == ""
    assert c.holds("rising") and not c.holds("falling") and not c.holds("")


def test_a_numeric_clause_is_a_strict_comparison():
    more, fewer = Clause("event_count", op=">", number=4), Clause("event_count", op="<", number=4)
    assert more.holds(5) and more.holds("4.5") and not more.holds(4) and not more.holds(3)
    assert fewer.holds(3) and fewer.holds("3.5") and not fewer.holds(4) and not fewer.holds(5)


@pytest.mark.parametrize(("clause", "question"), [
    (Clause("texture", "tonal"), "is it a tonal sound"),
    (Clause("texture", "noise-like"), "is it noise-like"),
    (Clause("texture", "impulsive"), "is it made of short impulsive events"),
    (Clause("pitch_direction", "rising"), "is the pitch rising"),
    (Clause("pitch_direction", "steady"), "is the pitch steady"),
    (Clause("pitch_height", "high"), "is it high-pitched"),
    (Clause("pitch_height", "low"), "is it low-pitched"),
    (Clause("pitch_height", "medium"), "is the pitch in the middle range"),
    (Clause("loudness_trend", "louder"), "does it get louder towards the end"),
    (Clause("loudness_trend", "quieter"), "does it get quieter towards the end"),
    (Clause("loudness_trend", "same level"), "does it stay at the same level"),
    (Clause("loudness_level", "loud"), "is it loud"),
    (Clause("loudness_level", "moderate"), "is it moderately loud"),
    (Clause("loudness_level", "quiet"), "is it quiet"),
    (Clause("brightness", "balanced"), "is the timbre balanced"),
    (Clause("regularity", "evenly spaced"), "are the events evenly spaced"),
    (Clause("tempo", "slow"), "do the events repeat slow"),
    (Clause("envelope", "decays"), "does it start sharply and decay"),
    (Clause("envelope", "sustained"), "is it sustained"),
    (Clause("modulation", "steady"), "does its level stay steady without swells"),
    (Clause("modulation", "regular swells"), "does it swell regularly"),
    (Clause("modulation", "irregular swells"), "does it swell irregularly"),
    (Clause("duration", op=">", number=2.0), "does it last longer than 2 seconds"),
    (Clause("duration", op="<", number=2.5), "does it last shorter than 2.5 seconds"),
    (Clause("event_count", op=">", number=11.0), "are there more than 11 separate events"),
    (Clause("event_count", op="<", number=3), "are there fewer than 3 separate events"),
])
def test_each_clause_asks_its_exact_yes_no_question(clause, question):
    assert clause.question() == question


def test_clauses_of_changes_over_time_have_exact_statements():
    assert [Clause("pitch_direction", v).statement() for v in VALUES["pitch_direction"]] == [
        "the pitch rises", "the pitch falls", "the pitch stays steady"]
    assert [Clause("loudness_trend", v).statement() for v in VALUES["loudness_trend"]] == [
        "it gets louder", "it gets quieter", "it stays at the same level"]
    assert Clause("regularity", "irregular").statement() == "the events are irregular"
    assert Clause("tempo", "fast").statement() == "the events repeat fast"


def test_every_clause_of_the_grammar_reads_back_from_its_question():
    for c in CATEGORICAL_CLAUSES + NUMERIC_CLAUSES:
        assert parse_clause(c.question()) == c, c
        assert parse_clause(c.question().upper()) == c, c


def test_every_statement_an_option_can_make_reads_back_and_holds_for_its_own_value_only():
    for prop in ("pitch_direction", "loudness_trend", "regularity", "tempo"):
        for value in VALUES[prop]:  # the two an MCQ option names, and "steady" / "same level"
            parsed = parse_clause(Clause(prop, value).statement())
            assert parsed == Clause(prop, value)
            assert [parsed.holds(v) for v in VALUES[prop]] == [v == value for v in VALUES[prop]]


def test_a_numeric_clause_reads_its_comparison_and_number():
    assert parse_clause("Does it last longer than 2.5 seconds?") == Clause("duration", op=">", number=2.5)
    assert parse_clause("does it last shorter than 3 seconds") == Clause("duration", op="<", number=3.0)
    assert parse_clause("are there more than 7 events") == Clause("event_count", op=">", number=7.0)
    assert parse_clause("are there fewer than 12 events") == Clause("event_count", op="<", number=12.0)


def test_a_clause_without_a_number_or_value_is_not_understood():
    assert parse_clause("How long does the sound last?") is None
    assert parse_clause("How many separate events are there?") is None
    assert parse_clause("what is the timbre like") is None  # brightness, but no value named
    assert parse_clause("Tell me a joke.") is None


def test_the_value_named_first_in_the_text_wins():
    assert find_value("pitch_direction", "is the pitch falling or rising") == "falling"
    assert find_value("pitch_direction", "The pitch RISES, then falls") == "rising"
    assert find_value("texture", "noise-like, not tonal") == "noise-like"
    assert find_value("tempo", "slow or fast") == "slow"
    assert find_value("tempo", "a breakfast") is None  # whole words only
    assert find_value("brightness", "neither") is None


@pytest.mark.parametrize(("prop", "text", "value"), [
    ("pitch_direction", "it rises", "rising"),
    ("pitch_direction", "it falls", "falling"),
    ("pitch_direction", "it holds steady", "steady"),
    ("pitch_height", "quite high", "high"),
    ("pitch_height", "around the middle", "medium"),
    ("pitch_height", "a medium pitch", "medium"),
    ("pitch_height", "very low", "low"),
    ("pitch_height", "below everything", None),
    ("loudness_trend", "it stays at the same level", "same level"),
    ("loudness_trend", "it gets quieter", "quieter"),
    ("envelope", "it decays quickly", "decays"),
    ("envelope", "it is sustained", "sustained"),
    ("loudness_level", "the sound is quiet overall", "quiet"),
    ("loudness_level", "it is loud", "loud"),
    ("loudness_level", "it is moderately loud", "moderate"),
    ("modulation", "it swells regularly", "regular swells"),
    ("modulation", "regular swells", "regular swells"),
    ("modulation", "it swells irregularly", "irregular swells"),
    ("modulation", "irregularly swelling", "irregular swells"),
    ("modulation", "a steady level", "steady"),
    ("regularity", "they are evenly spaced", "evenly spaced"),
    ("brightness", "a bright timbre", "bright"),
])
def test_each_value_is_recognised_by_its_synonyms(prop, text, value):
    assert find_value(prop, text) == value


def test_a_number_is_read_only_for_numeric_properties():
    assert read_number("duration", "The sound lasts about 2.25 seconds.") == 2.25
    assert read_number("event_count", "I hear 12 separate events, 3 of them loud.") == 12.0
    assert read_number("duration", "It lasts 3. seconds") == 3.0
    assert read_number("duration", "a while") is None
    assert read_number("tempo", "about 5 per second") is None


def test_a_compound_question_splits_into_its_clauses():
    assert split_clauses("Is A, and is B?") == ["Is A", "is B"]
    assert split_clauses("  Is A, is B, and does C?? ") == ["Is A", "is B", "does C"]
    assert split_clauses("Is it loud and is it dark?") == ["Is it loud", "is it dark"]
    assert split_clauses("Is it loud and are they fast and do they repeat and does it decay") == [
        "Is it loud", "are they fast", "do they repeat", "does it decay"]
    assert split_clauses("Is the pitch rising and falling?") == ["Is the pitch rising and falling"]
    assert split_clauses("Is A,, is B?") == ["Is A", "is B"]
    assert split_clauses("Is it loud?") == ["Is it loud"]
    assert split_clauses("Is it a class X, and is it in family XX?") == ["Is it a class X", "is it in family XX"]


def test_clauses_join_into_one_capitalised_question():
    assert join_clauses(["is it loud"]) == "Is it loud?"
    assert join_clauses(["is it loud", "is it dark"]) == "Is it loud, and is it dark?"
    assert join_clauses(["is a", "is b", "does c"]) == "Is a, is b, and does c?"
    question = join_clauses([c.question() for c in NUMERIC_CLAUSES[:3]])
    assert [parse_clause(p) for p in split_clauses(question)] == NUMERIC_CLAUSES[:3]


def test_an_option_reads_as_its_clauses():
    assert join_statements(["the pitch rises", "it gets quieter"]) == "the pitch rises and it gets quieter"
    assert join_statements(["it gets louder"]) == "it gets louder"
    assert option_clauses("the pitch rises and it gets quieter") == [
        Clause("pitch_direction", "rising"), Clause("loudness_trend", "quieter")]
    assert option_clauses("the events repeat slow and the events are irregular") == [
        Clause("tempo", "slow"), Clause("regularity", "irregular")]
    assert option_clauses("the pitch falls and a dog barks") == [Clause("pitch_direction", "falling"), None]
    assert option_clauses("it gets louder") == [Clause("loudness_trend", "louder")]


# --- world: true clauses and their negations --------------------------------------------------------

@pytest.mark.parametrize(("duration", "clause"), [
    (1.6, Clause("duration", op="<", number=2.0)),
    (1.64, Clause("duration", op="<", number=2.0)),
    (1.66, Clause("duration", op="<", number=3.0)),  # too close to 2 s: asked against 3 s
    (2.0, Clause("duration", op="<", number=3.0)),
    (2.34, Clause("duration", op="<", number=3.0)),
    (2.36, Clause("duration", op=">", number=2.0)),
    (2.9, Clause("duration", op=">", number=2.0)),
    (3.4, Clause("duration", op=">", number=2.0)),
])
def test_a_duration_is_asked_against_the_edge_it_is_clearly_away_from(duration, clause):
    assert _true_clause("duration", {"duration": duration}, rng(0)) == clause
    assert clause.holds(duration)


def test_an_event_count_is_asked_two_to_four_events_away_on_either_side():
    seen = collections.Counter()
    for s in range(120):
        c = _true_clause("event_count", {"event_count": 10.0}, rng(s))
        assert c.holds(10.0) and not _negate(c, rng(s)).holds(10.0)
        seen[c.op, c.number] += 1
    assert set(seen) == {(">", 6.0), (">", 7.0), (">", 8.0), ("<", 12.0), ("<", 13.0), ("<", 14.0)}
    assert 0.35 < sum(n for (op, _), n in seen.items() if op == ">") / 120 < 0.65
    # never below one event: "more than 1" for two events
    assert {_true_clause("event_count", {"event_count": 2.0}, rng(s)) for s in range(40)} == {
        Clause("event_count", op=">", number=1), Clause("event_count", op="<", number=4.0),
        Clause("event_count", op="<", number=5.0), Clause("event_count", op="<", number=6.0)}
    # a clip of one event is only ever asked "fewer than" (never the false "more than 1")
    assert {_true_clause("event_count", {"event_count": 1.0}, rng(s)).op for s in range(40)} == {"<"}


def test_a_categorical_true_clause_states_the_truth_and_a_missing_property_gives_none():
    truth = {"texture": "tonal", "loudness_level": np.str_("quiet")}
    assert _true_clause("texture", truth, rng(0)) == Clause("texture", "tonal")
    assert _true_clause("loudness_level", truth, rng(0)) == Clause("loudness_level", "quiet")
    assert type(_true_clause("loudness_level", truth, rng(0)).value) is str
    assert _true_clause("brightness", truth, rng(0)) is None
    assert _true_clause("duration", truth, rng(0)) is None


def test_a_negated_clause_is_false_where_the_true_one_holds():
    for c in CATEGORICAL_CLAUSES:
        others = {_negate(c, rng(s)) for s in range(30)}
        assert others == {Clause(c.prop, v) for v in VALUES[c.prop] if v != c.value}, c
    assert _negate(Clause("duration", op=">", number=2.0), rng(0)) == Clause("duration", op="<", number=2.0)
    assert _negate(Clause("event_count", op="<", number=7.0), rng(0)) == Clause("event_count", op=">", number=7.0)


# --- world: AQA questions ---------------------------------------------------------------------------

def test_a_change_over_time_mcq_offers_the_four_combinations_in_a_seeded_order():
    q = aqa_question(clip("rising chirp", **CHIRP), rng(2))
    assert q == aqa_question(clip("rising chirp", **CHIRP), rng(2))
    assert q.question == "How does the sound change over time?"
    assert q.answer == "the pitch rises and it gets quieter"
    assert q.choices == ["the pitch falls and it gets quieter", "the pitch rises and it gets quieter",
                         "the pitch falls and it gets louder", "the pitch rises and it gets louder"]
    ticks = aqa_question(clip("ticking", **TICKS), rng(2))
    assert ticks.answer == "the events repeat fast and the events are evenly spaced"
    assert sorted(ticks.choices) == sorted(f"the events repeat {t} and the events are {r}"
                                           for t in ("fast", "slow") for r in ("evenly spaced", "irregular"))
    orders = {tuple(q.choices) for s in range(60) if (q := aqa_question(clip("x", **CHIRP), rng(s))).choices}
    assert len(orders) >= 6


def test_about_a_third_of_the_questions_on_a_changing_sound_are_mcqs():
    mcq = 0
    for s in range(200):
        q = aqa_question(clip("falling chirp", **{**CHIRP, "pitch_direction": "falling", "loudness_trend": "louder"}),
                         rng(s))
        if q.choices is not None:
            mcq += 1
            assert q.answer == "the pitch falls and it gets louder" and q.answer in q.choices
            assert len(q.choices) == 4 and len(set(q.choices)) == 4
    assert 0.25 < mcq / 200 < 0.45


@pytest.mark.parametrize("truth", [
    {**CHIRP, "pitch_direction": "steady"},  # a held pitch has no change to ask about
    {**CHIRP, "loudness_trend": "same level"},
    {**CHIRP, "envelope": "decays"},  # a struck tone's fading is not a choice
    {**TICKS, "tempo": "medium"},
    {"texture": "tonal", "pitch_direction": "rising", "duration": 2.7},
])
def test_only_a_clip_changing_in_both_ways_gets_an_mcq(truth):
    assert all(aqa_question(clip("x", **truth), rng(s)).choices is None for s in range(40))


def test_the_first_changing_pair_is_asked_when_both_are():
    both = {**CHIRP, "tempo": "slow", "regularity": "irregular"}
    answers = {q.answer for s in range(40) if (q := aqa_question(clip("x", **both), rng(s))).choices}
    assert answers == {"the pitch rises and it gets quieter"}


def test_a_yes_no_question_asks_one_to_three_true_clauses_and_a_no_falsifies_exactly_one():
    sizes, answers, first_props, false_at = (collections.Counter() for _ in range(4))
    truths = [CHIRP, TICKS, {**TICKS, "event_count": 2.0, "duration": 1.7}, {**CHIRP, "duration": 2.2}]
    for s in range(300):
        truth = truths[s % 4]
        q = aqa_question(clip("x", **truth), rng(s))
        if q.choices is not None:
            continue
        held = holds_all(q.question, truth)
        assert q.question[0].isupper() and q.question.endswith("?")
        sizes[len(held)] += 1
        answers[q.answer] += 1
        first_props[parse_clause(split_clauses(q.question)[0]).prop] += 1
        if q.answer == "yes":
            assert all(held), q
        else:
            assert q.answer == "no" and held.count(False) == 1, q
            false_at[len(held), held.index(False)] += 1
    assert set(sizes) == {1, 2, 3} and 0.03 < sizes[1] / sizes.total() < 0.2
    assert set(answers) == {"yes", "no"} and 0.35 < answers["yes"] / answers.total() < 0.65
    assert len(first_props) >= 6  # the properties are shuffled
    assert {(3, 0), (3, 1), (3, 2), (2, 0), (2, 1)} <= set(false_at)


def test_a_yes_no_question_has_a_seeded_exact_text():
    assert aqa_question(clip("x", **CHIRP), rng(1)) == aqa_question(clip("x", **CHIRP), rng(1))
    q = aqa_question(clip("x", **CHIRP), rng(1))
    assert (q.question, q.answer, q.choices) == (
        "Does it last longer than 2 seconds, is it a tonal sound, and is it sustained?", "yes", None)
    q = aqa_question(clip("x", **TICKS), rng(0))
    assert (q.question, q.answer) == (
        "Is the timbre bright, are the events irregular, and does it last longer than 2 seconds?", "no")
    q = aqa_question(clip("x", **TICKS), rng(5))
    assert (q.question, q.answer) == ("Do the events repeat fast, and are there more than 11 separate events?", "yes")
    assert aqa_question(clip("x", **TICKS), rng(7)).question == "Is it a tonal sound?"


def test_questions_about_synthesised_clips_are_true_to_their_truth():
    for j, label in enumerate(sorted(leaf_classes())):
        for i in range(8):
            c = synthesize(label, rng(31, j, i))
            q = aqa_question(c, rng(32, j, i))
            if q.choices is None:
                held = holds_all(q.question, c.truth)
                assert held.count(False) == (q.answer == "no"), (label, q)
            else:
                assert q.answer in q.choices


# --- world: classification questions and negatives --------------------------------------------------

def test_close_negatives_take_the_sibling_then_cousins_then_the_rest():
    assert [close_negatives("hum", rng(0), k) for k in (1, 3, 5, 6)] == [
        ["whistle"], ["whistle", "chime", "rising chirp"],
        ["whistle", "chime", "rising chirp", "falling chirp", "pluck"],
        ["whistle", "chime", "rising chirp", "falling chirp", "pluck", "ticking"]]
    assert len(close_negatives("hum", rng(0), 20)) == 13
    assert sorted(close_negatives("hum", rng(0), 20)) == sorted(set(leaf_classes()) - {"hum"})
    leaves = leaf_classes()
    for label, info in leaves.items():
        for s in range(3):
            negs = close_negatives(label, rng(s))
            assert len(negs) == 3 and len(set(negs)) == 3 and label not in negs
            assert leaves[negs[0]].parent == info.parent
            assert all(leaves[n].grandparent == info.grandparent and leaves[n].parent != info.parent for n in negs[1:])
        assert close_negatives(label, rng(9), k=3) == close_negatives(label, rng(9), k=3)
    assert len({tuple(close_negatives("hum", rng(s), 5)) for s in range(20)}) > 3


def test_the_registered_samplers_draw_over_this_worlds_classes():
    ontology, random = _ontology_sampler("ontology"), _ontology_sampler("random")
    assert ontology is not None and random is not None and _ontology_sampler("no-such-sampler") is None
    assert _ontology_sampler("ontology") is ontology  # built once
    assert _ontology_sampler().sample("hum", 3, seed=4) == ontology.sample("hum", 3, seed=4)
    assert ontology.sample("hiss", 3, seed=1)[0] == "rumble"
    assert set(ontology.sample("hiss", 3, seed=1)) == {"rumble", "wind", "surf"}
    drawn = {n for s in range(30) for n in random.sample("hum", 3, seed=s)}
    assert drawn <= set(leaf_classes()) - {"hum"} and len(drawn) >= 10


@pytest.mark.parametrize("negatives", ["ontology", "no-such-sampler"])  # the latter: close_negatives
def test_a_classification_question_offers_the_label_and_three_close_negatives(negatives):
    leaves = leaf_classes()
    positions = collections.Counter()
    for j, label in enumerate(sorted(leaves)):
        for s in range(4):
            q = classification_question(clip(label), rng(j, s), negatives)
            assert (q.question, q.answer) == ("Classify the sound.", label)
            assert len(q.choices) == 4 and len(set(q.choices)) == 4 and label in q.choices
            others = [leaves[c] for c in q.choices if c != label]
            assert sum(o.parent == leaves[label].parent for o in others) == 1
            assert all(o.grandparent == leaves[label].grandparent for o in others)
            positions[q.choices.index(label)] += 1
    assert set(positions) == {0, 1, 2, 3}
    assert set(classification_question(clip("surf"), rng(0), negatives).choices) == {"surf", "wind", "hiss",
                                                                                      "rumble"}


def test_classification_choices_are_seeded_exactly():
    hum = clip("hum")
    assert classification_question(hum, rng(0)).choices == ["chime", "hum", "whistle", "rising chirp"]
    assert classification_question(hum, rng(1)).choices == ["hum", "whistle", "rising chirp", "chime"]
    assert [classification_question(hum, rng(s), "no-such-sampler").choices for s in (1, 2, 3)] == [
        ["hum", "whistle", "chime", "pluck"], ["pluck", "whistle", "falling chirp", "hum"],
        ["hum", "chime", "whistle", "rising chirp"]]
    assert classification_question(hum, rng(1), "random").choices == ["hum", "dripping", "ticking", "pluck"]
    assert classification_question(hum, rng(1)) == classification_question(hum, rng(1))


def test_random_negatives_reach_beyond_the_labels_category():
    leaves = leaf_classes()
    outside = 0
    for s in range(30):
        q = classification_question(clip("hum"), rng(s), "random")
        assert len(q.choices) == 4 and len(set(q.choices)) == 4 and "hum" in q.choices
        assert set(q.choices) <= set(leaves)
        outside += sum(leaves[c].grandparent != "tonal sound" for c in q.choices)
    assert outside > 20


# --- world: synthesis -------------------------------------------------------------------------------

def fingerprint(wave: np.ndarray) -> tuple[float, ...]:
    """Length, RMS, the peak sample (signed), mean step, spectral centroid (Hz), and last-to-first-quarter RMS ratio
    of a clip."""
    w = wave.astype(np.float64)
    spec, freqs = np.abs(np.fft.rfft(w)), np.fft.rfftfreq(len(w), 1 / SAMPLE_RATE)
    q = len(w) // 4
    return (len(w), np.sqrt(np.mean(w**2)), w[np.abs(w).argmax()], np.mean(np.abs(np.diff(w))),
            (spec * freqs).sum() / spec.sum(), np.sqrt(np.mean(w[-q:] ** 2)) / np.sqrt(np.mean(w[:q] ** 2)))


# the clip of each class under seed [7, its index]: the same seed must keep giving the same corpus
GOLDEN = {
    "chime": ((43602, 0.0100243, 0.0741356, 0.00437454, 3059.03, 0.00644351),
              {"texture": "tonal", "pitch_height": "high", "pitch_direction": "steady", "envelope": "decays",
               "loudness_trend": "quieter", "duration": 2.73}),
    "crackle": ((47780, 0.013256, 0.400152, 0.00317205, 4981.13, 0.81578),
                {"texture": "impulsive", "tempo": "fast", "regularity": "irregular", "event_count": 32.0,
                 "duration": 2.99}),
    "dripping": ((36060, 0.0651748, 0.482148, 0.00783641, 1098.07, 0.577392),
                 {"texture": "impulsive", "tempo": "slow", "regularity": "irregular", "event_count": 8.0,
                  "duration": 2.25}),
    "falling chirp": ((53680, 0.191015, -0.283085, 0.0608312, 1087.89, 0.999945),
                      {"texture": "tonal", "pitch_direction": "falling", "envelope": "sustained",
                       "loudness_trend": "same level", "loudness_level": "loud", "duration": 3.36}),
    "hiss": ((31488, 0.0129157, 0.0685405, 0.0183392, 5614.41, 1.83166),
             {"texture": "noise-like", "brightness": "bright", "modulation": "steady", "loudness_trend": "louder",
              "duration": 1.97}),
    "hum": ((26147, 0.215796, 0.580585, 0.0155624, 410.875, 0.438572),
            {"texture": "tonal", "pitch_height": "low", "pitch_direction": "steady", "envelope": "sustained",
             "loudness_trend": "quieter", "duration": 1.63}),
    "knocking": ((39569, 0.0407965, 0.26064, 0.000659314, 207.813, 1),
                 {"texture": "impulsive", "tempo": "slow", "regularity": "evenly spaced", "brightness": "dark",
                  "event_count": 7.0, "duration": 2.47}),
    "pluck": ((30451, 0.203383, 1.56584, 0.0059372, 396.878, 0.00141511),
              {"texture": "tonal", "pitch_height": "low", "pitch_direction": "steady", "envelope": "decays",
               "loudness_trend": "quieter", "duration": 1.9}),
    "rising chirp": ((46209, 0.0467477, -0.0960314, 0.0116468, 872.098, 0.571901),
                     {"texture": "tonal", "pitch_direction": "rising", "envelope": "sustained",
                      "loudness_trend": "quieter", "duration": 2.89}),
    "rumble": ((47882, 0.0101355, -0.0435139, 0.00090345, 247.566, 1.00068),
               {"texture": "noise-like", "brightness": "dark", "modulation": "steady", "loudness_trend": "same level",
                "loudness_level": "quiet", "duration": 2.99}),
    "surf": ((44330, 0.0600377, 0.310713, 0.0188593, 1013.67, 0.984517),
             {"texture": "noise-like", "modulation": "regular swells", "loudness_trend": "same level",
              "loudness_level": "moderate", "duration": 2.77}),
    "ticking": ((30172, 0.0102461, 0.390155, 0.00194346, 5036.57, 0.850383),
                {"texture": "impulsive", "tempo": "fast", "regularity": "evenly spaced", "brightness": "bright",
                 "event_count": 11.0, "duration": 1.89}),
    "whistle": ((30296, 0.0120851, 0.0235196, 0.00852607, 2279.43, 1.72687),
                {"texture": "tonal", "pitch_height": "high", "pitch_direction": "steady", "envelope": "sustained",
                 "loudness_trend": "louder", "duration": 1.89}),
    "wind": ((36180, 0.010966, -0.0662425, 0.00274446, 764.008, 0.70825),
             {"texture": "noise-like", "modulation": "irregular swells", "loudness_trend": "quieter",
              "duration": 2.26}),
}


def test_each_class_synthesises_the_recorded_clip_for_a_fixed_seed():
    assert sorted(GOLDEN) == sorted(leaf_classes())
    for j, label in enumerate(sorted(leaf_classes())):
        c = synthesize(label, rng(7, j))
        assert c.label == label and c.wave.dtype == np.float32
        assert c.truth == GOLDEN[label][1], label
        assert fingerprint(c.wave) == pytest.approx(GOLDEN[label][0], rel=2e-5), label
        again = synthesize(label, rng(7, j))
        assert np.array_equal(again.wave, c.wave) and again.truth == c.truth
        other = synthesize(label, rng(8, j)).wave
        assert len(other) != len(c.wave) or not np.array_equal(other, c.wave)
    with pytest.raises(KeyError):
        synthesize("dog bark", rng(0))


def dominant_hz(wave: np.ndarray) -> float:
    spec = np.abs(np.fft.rfft(wave * np.hanning(len(wave))))
    return float(np.fft.rfftfreq(len(wave), 1 / SAMPLE_RATE)[spec.argmax()])


@pytest.mark.parametrize(("label", "low", "high"), [
    ("hum", 90, 220), ("whistle", 1290, 2610), ("chime", 1200, 2000), ("pluck", 110, 260)])
def test_a_steady_tone_sits_in_its_classes_pitch_range(label, low, high):
    pitches = [dominant_hz(synthesize(label, rng(3, s)).wave[:4000]) for s in range(6)]
    assert all(low - 4 <= p <= high + 4 for p in pitches) and len(set(pitches)) == 6, pitches


def test_a_chirp_glides_by_its_ratio_in_its_direction():
    for s in range(5):
        rising, falling = synthesize("rising chirp", rng(3, s)).wave, synthesize("falling chirp", rng(3, s)).wave
        start, end = dominant_hz(rising[:4000]), dominant_hz(rising[-4000:])
        assert 330 < start < 720 and 1.8 < end / start < 3.0
        assert dominant_hz(falling[:4000]) / dominant_hz(falling[-4000:]) == pytest.approx(end / start, rel=0.03)


def test_a_clips_length_and_recorded_duration_agree():
    for j, label in enumerate(sorted(leaf_classes())):
        for s in range(3):
            c = synthesize(label, rng(4, j, s))
            assert abs(len(c.wave) / SAMPLE_RATE - c.truth["duration"]) <= 0.0051
            assert 1.6 <= c.truth["duration"] <= 3.4 or leaf_classes()[label].grandparent == "impulsive sound"


def db(x: np.ndarray) -> float:
    return 20 * np.log10(np.sqrt(np.mean(x.astype(np.float64) ** 2)))


def test_a_held_level_clip_is_at_its_recorded_loudness_and_a_trend_ramps_its_level():
    ranges = {"loud": (-16, -12), "moderate": (-27, -24), "quiet": (-40, -36)}
    seen = collections.Counter()
    for label in ("hum", "whistle", "hiss", "rumble", "rising chirp"):
        for s in range(12):
            c = synthesize(label, rng(5, s))
            trend, q = c.truth["loudness_trend"], len(c.wave) // 4
            seen[trend] += 1
            change = db(c.wave[-q:]) - db(c.wave[:q])
            if trend == "same level":
                lo, hi = ranges[c.truth["loudness_level"]]
                assert lo - 0.01 <= db(c.wave) <= hi + 0.01 and abs(change) < 1.0, (label, s)
            else:
                assert "loudness_level" not in c.truth
                assert 4.0 < (change if trend == "louder" else -change) < 9.5, (label, s, change)
    assert set(seen) == {"louder", "quieter", "same level"}


def test_a_struck_tone_fades_and_never_records_a_level():
    for label in ("chime", "pluck"):
        for s in range(6):
            c = synthesize(label, rng(6, s))
            assert c.truth["loudness_trend"] == "quieter" and "loudness_level" not in c.truth
            assert db(c.wave[-2000:]) < db(c.wave[:2000]) - 20


def test_an_impulsive_clip_records_its_event_count_and_tempo_and_peaks_below_full_scale():
    tempos = collections.defaultdict(set)
    for label in ("ticking", "knocking", "crackle", "dripping"):
        for s in range(10):
            c = synthesize(label, rng(9, s))
            count, duration = c.truth["event_count"], c.truth["duration"]
            assert isinstance(count, float) and count >= 1 and "loudness_trend" not in c.truth
            assert c.truth["tempo"] == ("fast" if count / duration > 4 else "slow")
            tempos[label].add(c.truth["tempo"])
            assert -12.01 <= 20 * np.log10(np.abs(c.wave).max()) <= -2.99
            if label in ("ticking", "knocking"):  # long enough for at least five evenly spaced events
                assert count >= 5
    assert tempos == {"ticking": {"fast"}, "knocking": {"slow"}, "crackle": {"fast"}, "dripping": {"slow"}}
    # the tempo recorded is the one the events make, not the class's: a dripping can be fast
    assert synthesize("dripping", rng(9, 50)).truth == {
        "texture": "impulsive", "tempo": "fast", "regularity": "irregular", "event_count": 14.0, "duration": 3.29}


def band_edge_hz(wave: np.ndarray) -> float:
    spec = np.abs(np.fft.rfft(wave.astype(np.float64)))
    return float(np.fft.rfftfreq(len(wave), 1 / SAMPLE_RATE)[spec > 1e-4 * spec.max()].max())


def test_a_rumble_is_noise_low_passed_between_300_and_500_hz():
    edges = [band_edge_hz(c.wave) for s in range(20)
             if (c := synthesize("rumble", rng(10, s))).truth["loudness_trend"] == "same level"]  # no ramp to smear it
    assert len(edges) >= 4 and all(300 <= e <= 500 for e in edges)
    assert band_edge_hz(synthesize("rumble", rng(10, 6)).wave) == pytest.approx(328.45, abs=0.3)


def test_smooth_noise_has_unit_spread_and_nothing_above_its_cutoff():
    out = _smooth_noise(rng(0), 16000, 1000.0)  # 1 Hz bins
    spec = np.abs(np.fft.rfft(out))
    assert np.std(out) == pytest.approx(1.0, abs=1e-9) and len(out) == 16000
    assert spec[1000] > 1.0 and spec[1001:].max() < 1e-9  # the cutoff itself passes


def test_events_are_added_where_they_start_and_cut_at_the_clips_end():
    out = _events(rng(0), 1000, np.array([0.0, 0.01, 0.05]), lambda r: np.ones(500))
    assert out[:160].tolist() == [1.0] * 160 and out[160:500].tolist() == [2.0] * 340  # overlapping bursts add up
    assert out[500:660].tolist() == [1.0] * 160 and out[660:800].tolist() == [0.0] * 140
    assert out[800:].tolist() == [1.0] * 200  # the last burst is cut at the end


def test_poisson_event_times_keep_their_gap_and_stop_before_the_end():
    times = _poisson_times(rng(0), 3.0, 3.0, 0.15)
    assert times == pytest.approx([0.14554425, 0.48540995, 0.63540995, 0.78540995, 0.96885758, 1.51217106,
                                   1.73669871, 1.98846583])
    for s in range(20):
        t = _poisson_times(rng(s), 6.0, 2.0, 0.1)
        assert 0.05 <= t[0] <= 0.2 and t[-1] < 1.9 and np.all(np.diff(t) >= 0.1 - 1e-12)
    dense = _poisson_times(rng(1), 1000.0, 1.0, 0.06)  # gaps never under the minimum
    assert np.diff(dense) == pytest.approx(np.full(len(dense) - 1, 0.06))
    assert dense[-1] < 0.9 <= dense[-1] + 0.06
    assert len(_poisson_times(rng(0), 1e-3, 3.0, 0.06)) == 1


# --- the item source --------------------------------------------------------------------------------

def test_the_source_config_has_its_documented_defaults_and_bounds():
    c = EmbeddedSourceConfig()
    assert (c.items, c.seed, c.classification_fraction, c.negatives) == (200, 0, 0.5, "ontology")
    for ok in (EmbeddedSourceConfig(items=0), EmbeddedSourceConfig(classification_fraction=0.0),
               EmbeddedSourceConfig(classification_fraction=1.0)):
        assert ok is not None
    with pytest.raises(ValueError, match=r"^items must be >= 0$"):
        EmbeddedSourceConfig(items=-1)
    for bad in (-0.01, 1.01):
        with pytest.raises(ValueError, match=r"^classification_fraction must be between 0 and 1$"):
            EmbeddedSourceConfig(classification_fraction=bad)
    with pytest.raises(msgspec.ValidationError, match="items"):
        msgspec.convert({"items": -3}, EmbeddedSourceConfig)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"negatives": "close"}, EmbeddedSourceConfig)
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"itemz": 3}, EmbeddedSourceConfig)


def replayed_clip(index: int, seed: int) -> Clip:
    """The clip item ``index`` of corpus ``seed`` holds: a label drawn from the sorted classes, then the clip."""
    r = np.random.default_rng([seed, index])
    labels = sorted(leaf_classes())
    return synthesize(labels[int(r.integers(len(labels)))], r)


def test_an_item_is_its_seeds_clip_with_a_question_about_it():
    for index, seed in ((0, 0), (7, 3), (12, 1)):
        item, c = make_item(index, seed, 0.0), replayed_clip(index, seed)
        assert item.id == f"embedded-{seed}-{index:06d}" and item.source == "embedded"
        assert item.labels == [c.label] and item.kind == "aqa"
        assert item.audio == audio_ref_from_wave(c.wave, SAMPLE_RATE) and item.audio.sample_rate == SAMPLE_RATE
    assert make_item(7, 3, 0.5).id == "embedded-3-000007" and make_item(123456, 12, 0.5).id == "embedded-12-123456"
    item = make_item(0, 0, 0.0)
    assert (item.question, item.answer, item.choices) == (
        "Is it made of short impulsive events, and do the events repeat fast?", "yes", None)
    assert make_item(1, 0, 1.0).question == "Classify the sound."
    for i in range(3):  # the default negatives are the ontology sampler's
        assert make_item(i, 2, 1.0) == make_item(i, 2, 1.0, "ontology") != make_item(i, 2, 1.0, "random")


def test_items_are_deterministic_and_vary_with_index_and_seed():
    assert make_item(5, 2, 0.5, "random") == make_item(5, 2, 0.5, "random")
    assert make_item(5, 2, 0.5).audio != make_item(6, 2, 0.5).audio
    assert make_item(5, 2, 0.5).audio != make_item(5, 3, 0.5).audio


def test_the_classification_fraction_and_negatives_shape_the_items():
    leaves = leaf_classes()
    kinds, labels, outside = collections.Counter(), set(), {"ontology": 0, "random": 0}
    for i in range(60):
        item = make_item(i, 5, 0.5)
        kinds[item.kind] += 1
        labels.add(item.labels[0])
        assert item.answer in (item.choices or ["yes", "no"])
    assert 18 < kinds["classification"] < 42 and kinds.total() == 60
    assert labels == set(leaves)  # every class is drawn
    for negatives in outside:
        for i in range(20):
            item = make_item(i, 5, 1.0, negatives)
            assert item.kind == "classification" and item.answer == item.labels[0]
            assert item.question == "Classify the sound." and len(item.choices) == 4
            family = leaves[item.labels[0]].grandparent
            outside[negatives] += sum(leaves[c].grandparent != family for c in item.choices)
    assert outside["ontology"] == 0 and outside["random"] > 10
    assert all(make_item(i, 5, 0.0).kind == "aqa" for i in range(20))


def test_the_source_yields_its_items_in_partitions_of_the_given_size():
    config = EmbeddedSourceConfig(items=7, seed=4, classification_fraction=1.0, negatives="random")
    source = EmbeddedSource(config)
    assert source.config is config and source.count() == 7
    parts = [list(p) for p in source.partitions(3)]
    assert [len(p) for p in parts] == [3, 3, 1]
    assert [i for p in parts for i in p] == [make_item(i, 4, 1.0, "random") for i in range(7)]
    assert [len(list(p)) for p in source.partitions(7)] == [7]
    assert [len(list(p)) for p in source.partitions(10)] == [7]
    assert list(EmbeddedSource(EmbeddedSourceConfig(items=0)).partitions(5)) == []


# --- sampling among candidate phrasings -------------------------------------------------------------

CANDIDATES = ["a", "b", "c", "d"]


def test_greedy_sampling_and_a_single_candidate_give_the_first():
    assert all(choose(CANDIDATES, Sampling(), s) == "a" for s in range(20))
    assert all(choose(["only"], Sampling(temperature=5.0), s) == "only" for s in range(20))
    assert {choose(["x", "y"], Sampling(temperature=1.0), s) for s in range(20)} == {"x", "y"}


def test_sampling_is_seeded_by_the_request_or_else_by_the_config():
    hot = Sampling(temperature=1.0)
    drawn = [choose(CANDIDATES, hot, s) for s in range(12)]
    assert drawn == ["a", "a", "a", "a", "c", "b", "a", "a", "a", "b", "c", "a"]
    assert [choose(CANDIDATES, Sampling(temperature=1.0, seed=s), None) for s in range(12)] == drawn
    assert [choose(CANDIDATES, Sampling(temperature=1.0, seed=99), s) for s in range(12)] == drawn


def test_candidates_are_drawn_with_logits_falling_by_one_per_rank_over_the_temperature():
    for temperature in (1.0, 2.0):
        counts = collections.Counter(choose(CANDIDATES, Sampling(temperature=temperature), s) for s in range(2000))
        logits = -np.arange(4) / temperature
        expected = np.exp(logits) / np.exp(logits).sum()
        assert [counts[c] / 2000 for c in CANDIDATES] == pytest.approx(expected, abs=0.035)


def test_top_k_and_top_p_cut_the_tail():
    def drawn(**kw) -> set[str]:
        return {choose(CANDIDATES, Sampling(temperature=2.0, **kw), s) for s in range(200)}

    # at temperature 2 the probabilities are 0.455, 0.276, 0.167, 0.102
    assert drawn() == {"a", "b", "c", "d"}
    assert drawn(top_k=1) == {"a"} and drawn(top_k=2) == {"a", "b"} and drawn(top_k=3) == {"a", "b", "c"}
    assert drawn(top_p=0.45) == {"a"} and drawn(top_p=0.46) == {"a", "b"}
    assert drawn(top_p=0.73) == {"a", "b"} and drawn(top_p=0.74) == {"a", "b", "c"}
    assert drawn(top_k=2, top_p=0.6) == {"a"}  # top_p counts the mass that top_k kept
    assert drawn(top_k=2, top_p=0.63) == {"a", "b"}
