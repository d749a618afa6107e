"""The ontology model: loading, label normalisation, kinship queries, restrictions, bad files."""

from __future__ import annotations

import signal
from contextlib import contextmanager
from pathlib import Path

import pytest
from afcot_negatives.ontology import Ontology, SoundClass, eval_label, label_key
from hypothesis import given
from hypothesis import strategies as st

from afcot_core.errors import BadInput

FIXTURE = Path(__file__).parent / "fixtures" / "negatives" / "ontology.json"


@pytest.fixture(scope="module")
def onto() -> Ontology:
    return Ontology.from_json(FIXTURE)


def names(onto: Ontology, ids) -> set[str]:
    return {onto.get(i).name for i in ids}


def test_loads_fixture(onto):
    assert len(onto) == 38
    assert names(onto, onto.roots()) == {"Sounds"}
    assert names(onto, onto.parents("Growling")) == {"Dog", "Wild animals"}
    assert onto.get(onto.roots()[0]).restricted
    assert onto.require("Crash cymbal").restrictions == frozenset({"blacklist"})
    assert not onto.require("Hi-hat").restricted


@pytest.mark.parametrize("spelling", ["Male_speech_and_man_speaking", "male speech and man speaking",
                                      "Male speech, man speaking", "MALE SPEECH,  MAN SPEAKING",
                                      "/fx/male_speech_man_speaking"])
def test_spellings_resolve_to_one_class(onto, spelling):
    assert onto.require(spelling).name == "Male speech, man speaking"
    assert spelling in onto


def test_other_spellings(onto):
    assert onto.require("Domestic_animals_and_pets").name == "Domestic animals, pets"
    assert onto.require("hi hat").name == "Hi-hat"
    assert onto.resolve("theremin") is None
    assert "theremin" not in onto


def test_unknown_label_suggests(onto):
    with pytest.raises(BadInput, match=r"clip 7: label 'Male speec' is not in .*did you mean 'Male speech, man"):
        onto.require("Male speec", "clip 7")


def test_ancestors_descendants_lineage(onto):
    assert names(onto, onto.ancestors("Growling")) == {"Dog", "Wild animals", "Domestic animals, pets",
                                                      "Animal", "Sounds"}
    pets = {"Dog", "Cat", "Bark", "Growling", "Meow", "Purr"}
    assert names(onto, onto.descendants("Domestic animals, pets")) == pets
    assert onto.descendants("Bark") == frozenset()
    assert names(onto, onto.lineage("Cymbal")) == {"Cymbal", "Hi-hat", "Crash cymbal", "Percussion",
                                                   "Musical instrument", "Music", "Sounds"}


def test_siblings_through_every_parent(onto):
    assert names(onto, onto.siblings("Growling")) == {"Bark", "Bird"}
    assert names(onto, onto.siblings("Electric guitar")) == {"Acoustic guitar", "Bass guitar"}
    assert names(onto, onto.siblings("Music")) == {"Human sounds", "Animal", "Things"}


def test_cousins(onto):
    assert names(onto, onto.cousins("Bark")) == {"Meow", "Purr", "Cat"}
    assert names(onto, onto.cousins("Growling")) == {"Meow", "Purr", "Cat", "Chirp, tweet", "Crow"}
    assert names(onto, onto.cousins("Electric guitar")) == {"Drum", "Cymbal", "Percussion"}
    assert names(onto, onto.cousins("Hi-hat")) == {"Drum"}


@pytest.mark.parametrize(("a", "b", "rel"), [
    ("Bark", "Bark", "same"), ("Bark", "dog", "ancestor"), ("Dog", "bark", "descendant"),
    ("Bark", "Growling", "sibling"), ("Bark", "Meow", "cousin"), ("Bark", "Car", "farther"),
    ("Hi-hat", "Electric guitar", "farther"), ("Growling", "Crow", "cousin"),
])
def test_relation(onto, a, b, rel):
    assert onto.relation(a, b) == rel


def test_degree(onto):
    assert onto.degree("Bark", "Growling") == 1
    assert onto.degree("Hi-hat", "Electric guitar") == 3
    lonely = Ontology.from_records([{"id": "a", "name": "A"}, {"id": "b", "name": "B"}])
    assert lonely.degree("A", "B") is None
    assert lonely.relation("A", "B") == "farther"


@pytest.mark.parametrize(("records", "problem"), [
    ({"id": "a"}, "expected a JSON list"),
    ([{"id": "a", "name": "A"}, {"id": "a", "name": "B"}], "duplicate class id 'a'"),
    ([{"id": "a", "name": "A", "child_ids": ["zz"]}], "unknown child 'zz'"),
    ([{"id": "a", "name": ""}], r"\[0\]: missing or empty string 'name'"),
    ([{"id": "a", "name": "Dog, cat"}, {"id": "b", "name": "Dog and cat"}], "one label after normalisation"),
    ([{"id": "a", "name": "A", "child_ids": ["b"]}, {"id": "b", "name": "B", "child_ids": ["a"]}], "cycle"),
    ([{"id": "a", "name": "A", "restrictions": "abstract"}], r"\[0\]\.restrictions"),
])
def test_bad_ontologies(records, problem):
    with pytest.raises(BadInput, match=problem):
        Ontology.from_records(records, "test.json")


def test_unreadable_file(tmp_path):
    with pytest.raises(BadInput, match="not found"):
        Ontology.from_json(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("[{", encoding="utf-8")
    with pytest.raises(BadInput, match="not a readable JSON"):
        Ontology.from_json(bad)


def test_bundled_audioset_ontology():
    from afcot_negatives import AUDIOSET_ONTOLOGY

    onto = Ontology.from_json(AUDIOSET_ONTOLOGY)
    assert len(onto) == 632
    assert len(onto.roots()) == 7
    speech = onto.require("male speech and man speaking")
    assert speech.id == "/m/05zppz"
    assert onto.require("Female_speech_and_woman_speaking").id in onto.siblings(speech.id)
    assert onto.relation("chuckle and chortle", "giggle") == "sibling"
    notice = AUDIOSET_ONTOLOGY.with_name("AUDIOSET_ONTOLOGY_NOTICE.txt").read_text(encoding="utf-8")
    assert "CC BY-SA 4.0" in notice and "audioset/ontology" in notice


_word = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=6)
_words = st.lists(_word, min_size=1, max_size=4)


@given(_words)
def test_label_key_ignores_case_separators_and_and(words):
    words = [w for w in words if w != "and"] or ["x"]
    audioset = ", ".join(w.capitalize() for w in words)
    fsd = "_and_".join(w.capitalize() for w in words)
    assert label_key(audioset) == label_key(fsd) == label_key(eval_label(fsd)) == " ".join(words)


def test_eval_label():
    assert eval_label("Male_speech_and_man_speaking") == "male speech and man speaking"
    assert eval_label("Frying_(food)") == "frying (food)"


# --- small hand-made ontologies: exact messages, descriptions, cycles -------------------------------

_PETS = [{"id": "/p", "name": "Pets", "child_ids": ["/d", "/c"]}, {"id": "/d", "name": "Dog", "child_ids": ["/b"]},
         {"id": "/c", "name": "Cat"}, {"id": "/b", "name": "Bark"}]


def _message(records, source="test.json") -> str:
    with pytest.raises(BadInput) as info:
        Ontology.from_records(records, source)
    return str(info.value)


def test_apostrophes_vanish_inside_a_word():
    assert label_key("Baby's cry") == label_key("Baby’s cry") == label_key("babys_cry") == "babys cry"


def test_an_ontology_without_a_source_is_called_ontology():
    for onto in (Ontology([SoundClass("a", "A")]), Ontology.from_records([{"id": "a", "name": "A"}])):
        assert onto.source == "ontology"
        with pytest.raises(BadInput) as info:
            onto.require("zzz")
        assert str(info.value) == "label 'zzz' is not in ontology"


def test_an_unknown_label_names_where_it_was_met_the_source_and_the_nearest_class():
    onto = Ontology.from_records(_PETS, "test.json")
    for where, prefix in (("clip 7", "clip 7: "), ("", "")):
        with pytest.raises(BadInput) as info:
            onto.require("Barc", where)
        assert str(info.value) == f"{prefix}label 'Barc' is not in test.json (did you mean 'Bark'?)"
    with pytest.raises(BadInput) as info:
        onto.require("Ca")
    assert str(info.value) == "label 'Ca' is not in test.json (did you mean 'Cat'?)"


def test_an_ontology_file_is_named_by_its_path(tmp_path):
    path = tmp_path / "tiny.json"
    path.write_text('[{"id": "a", "name": "A"}]', encoding="utf-8")
    onto = Ontology.from_json(path)
    assert onto.source == str(path)
    with pytest.raises(BadInput) as info:
        onto.require("zzz")
    assert str(info.value) == f"label 'zzz' is not in {path}"


@pytest.mark.parametrize(("records", "message"), [
    ({"id": "a"}, "test.json: expected a JSON list of classes, got dict"),
    ([{"id": "a", "name": "A"}, 3], "test.json: entry 1: expected an object, got int"),
    ([{"id": "a", "name": "!?"}], "test.json: class 'a' has an empty name"),
    ([{"id": "a", "name": "Dog, cat"}, {"id": "b", "name": "Dog and cat"}],
     "test.json: names 'Dog, cat' and 'Dog and cat' are one label after normalisation"),
    ([{"id": "a", "name": "A", "child_ids": "b"}, {"id": "b", "name": "B"}],
     "test.json[0].child_ids: expected a list of ids"),
    ([{"id": "a", "name": "A"}, {"id": "b", "name": "B", "child_ids": ["a", 1]}],
     "test.json[1].child_ids: expected a list of ids"),
])
def test_bad_ontology_messages_name_the_source_and_the_entry(records, message):
    assert _message(records) == message


def test_descriptions_are_kept_as_text_and_default_to_empty():
    onto = Ontology.from_records([{"id": "a", "name": "A", "description": "A thing."}, {"id": "b", "name": "B"},
                                  {"id": "c", "name": "C", "description": 7}])
    assert [onto.get(i).description for i in "abc"] == ["A thing.", "", "7"]


@contextmanager
def _within(seconds: float):
    """Fail with TimeoutError when the block runs longer than ``seconds`` (re-raised every 0.1 s after that, in
    case the first one lands where Python ignores exceptions, such as a finaliser)."""
    def expire(signum, frame):
        raise TimeoutError(f"took over {seconds} s")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds, 0.1)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@pytest.mark.parametrize(("records", "through"), [
    ([{"id": "a", "name": "A", "child_ids": ["b"]}, {"id": "b", "name": "B", "child_ids": ["a"]}], "A"),
    ([{"id": "a", "name": "A", "child_ids": ["b"]}, {"id": "b", "name": "B", "child_ids": ["c"]},
      {"id": "c", "name": "C", "child_ids": ["b"]}], "B"),
    ([{"id": "a", "name": "A", "child_ids": ["b"]}, {"id": "b", "name": "B"},
      {"id": "c", "name": "C", "child_ids": ["d"]}, {"id": "d", "name": "D", "child_ids": ["c"]}], "C"),
])
def test_a_cycle_is_named_by_the_first_class_met_twice_on_the_path(records, through):
    with _within(2):
        assert _message(records) == f"test.json: cycle through '{through}'"


def test_classes_reached_by_many_paths_are_checked_once():
    depth = 40  # 2**40 paths from the top: a check that walks paths instead of classes never ends
    records = [{"id": "top", "name": "Top", "child_ids": ["l0", "r0"]}]
    for i in range(depth):
        below = [f"l{i + 1}", f"r{i + 1}"] if i + 1 < depth else []
        records += [{"id": f"l{i}", "name": f"L{i}", "child_ids": below},
                    {"id": f"r{i}", "name": f"R{i}", "child_ids": below}]
    with _within(2):
        onto = Ontology.from_records(records)
    assert len(onto) == 2 * depth + 1 and len(onto.descendants("Top")) == 2 * depth
