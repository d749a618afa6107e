"""Loading ontologies (the default, the cache, missing files) and vocabularies (formats, spelling, errors)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from afcot_negatives import AUDIOSET_ONTOLOGY
from afcot_negatives.vocabulary import Entry, load_ontology, load_vocabulary

from afcot_core.errors import BadInput

ONTO = Path(__file__).parent / "fixtures" / "negatives" / "ontology.json"


@pytest.fixture(scope="module")
def onto():
    return load_ontology(ONTO)


def _records(*names: str) -> list[dict]:
    ids = [f"/t/{n.lower()}" for n in names]
    return [{"id": ids[0], "name": names[0], "child_ids": ids[1:], "restrictions": []}] + [
        {"id": i, "name": n, "child_ids": [], "restrictions": []} for i, n in zip(ids[1:], names[1:], strict=True)]


def test_the_bundled_audioset_ontology_is_the_default():
    default = load_ontology()
    assert default is load_ontology(AUDIOSET_ONTOLOGY) and len(default) == 632


def test_an_ontology_file_is_read_again_once_it_changes(tmp_path):
    path = tmp_path / "onto.json"
    path.write_text(json.dumps(_records("Root", "Dog")), encoding="utf-8")
    os.utime(path, ns=(1_000_000_000, 1_000_000_000))
    first = load_ontology(path)
    assert len(first) == 2 and load_ontology(str(path)) is first  # cached while the file is unchanged
    path.write_text(json.dumps(_records("Root", "Dog", "Cat")), encoding="utf-8")
    os.utime(path, ns=(2_000_000_000, 2_000_000_000))
    again = load_ontology(path)
    assert len(again) == 3 and again.resolve("Cat") is not None


def test_a_missing_ontology_file_is_refused(tmp_path):
    with pytest.raises(BadInput, match=r"none\.json: ontology file not found$"):
        load_ontology(tmp_path / "none.json")


def test_without_a_vocabulary_every_unrestricted_class_is_a_candidate(onto):
    default = load_vocabulary(None, onto)
    every = load_vocabulary(None, onto, include_restricted=True)
    assert len(every) == 38 and every[0] == Entry("Sounds", "/fx/sounds")
    assert [e for e in every if e not in default] == [Entry("Sounds", "/fx/sounds"),
                                                      Entry("Human sounds", "/fx/human_sounds"),
                                                      Entry("Crash cymbal", "/fx/crash_cymbal")]


def test_a_vocabulary_lists_each_class_once_as_it_spells_it_and_an_id_by_the_class_name(onto):
    got = load_vocabulary(["Bark", "bark", "/fx/drum", "Hi hat", "Crash_cymbal"], onto)
    assert got == [Entry("Bark", "/fx/bark"), Entry("Drum", "/fx/drum"), Entry("Hi hat", "/fx/hihat"),
                   Entry("Crash_cymbal", "/fx/crash_cymbal")]


def test_an_empty_vocabulary_is_refused(onto, tmp_path):
    with pytest.raises(BadInput, match=r"^vocabulary: no labels$"):
        load_vocabulary([], onto)
    path = tmp_path / "v.txt"
    path.write_text("\n  \n", encoding="utf-8")
    with pytest.raises(BadInput, match=rf"^{re.escape(str(path))}: no labels$"):
        load_vocabulary(str(path), onto)


def test_fsd50k_csv_rows_take_the_class_from_the_mid_and_keep_the_label(onto, tmp_path):
    path = tmp_path / "v.csv"
    path.write_text("0,Hi_hat_cymbal,/fx/hihat\n1,/fx/drum\n2,Bark\n", encoding="utf-8")
    assert load_vocabulary(str(path), onto) == [Entry("Hi_hat_cymbal", "/fx/hihat"), Entry("Drum", "/fx/drum"),
                                                Entry("Bark", "/fx/bark")]


def test_a_bad_csv_label_is_reported_with_its_line_number(onto, tmp_path):
    path = tmp_path / "v.csv"
    path.write_text("0,Bark,/fx/bark\n1,Theremin\n", encoding="utf-8")
    with pytest.raises(BadInput, match=r"v\.csv:2: label 'Theremin'"):
        load_vocabulary(str(path), onto)


@pytest.mark.parametrize(("text", "problem"), [('["Bark",', r"not valid JSON \(.+\)$"),
                                               ('{"Bark": 1}', "expected a JSON list of label strings$"),
                                               ('["Bark", 1]', "expected a JSON list of label strings$")])
def test_a_json_vocabulary_must_be_a_list_of_strings(onto, tmp_path, text, problem):
    path = tmp_path / "v.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(BadInput, match=rf"^{re.escape(str(path))}: {problem}"):
        load_vocabulary(str(path), onto)


def test_an_unreadable_vocabulary_file_is_refused(onto, tmp_path):
    with pytest.raises(BadInput, match=r"none\.txt: cannot read vocabulary \(.+\)$"):
        load_vocabulary(str(tmp_path / "none.txt"), onto)
