"""``afcot negatives analyze``: distractor relations and reproduction, on a fixture and on the real files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from afcot_negatives.analysis import analyze, relation
from afcot_negatives.evalfile import McqEntry, read_eval_file
from afcot_negatives.samplers import OntologyConfig, OntologySampler
from afcot_negatives.vocabulary import load_ontology

from afcot_core.api import make_rng
from afcot_core.cli import main

FIX = Path(__file__).parent / "fixtures" / "negatives"
ONTO = str(FIX / "ontology.json")
SHARED = Path(os.environ.get("AFCOT_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
REAL = SHARED / "af_reasoning_eval"


def test_relations_on_the_fixture():
    onto = load_ontology(ONTO)
    assert relation(onto, "bark", "growling") == "sibling"
    assert relation(onto, "male speech and man speaking", "speech") == "lineal"
    assert relation(onto, "hi-hat", "theremin") == "unresolved"
    _, entries = read_eval_file(FIX / "classification_eval.json")
    vocab = sorted({c for e in entries for c in e.choices if onto.resolve(c)})
    report = analyze(entries, OntologySampler(OntologyConfig(ontology=ONTO, vocabulary=vocab)))
    t = report.totals
    assert t["items"] == 4 and t["distractors"] == 12
    assert t["by_relation"] == {"sibling": 5, "cousin": 3, "farther": 2, "lineal": 1, "unresolved": 1}
    assert t["items_all_close"] == 1  # only the bark item
    assert report.items[1].relations == {"purr": "cousin", "growling": "sibling", "meow": "cousin"}
    # electric guitar: siblings in the vocabulary are acoustic guitar only, so cousins are reachable too
    assert report.items[0].reachable == 2  # acoustic guitar, drum (car is farther)
    assert report.items[1].reachable == 3
    assert t["reproduction"]["items"] == 3  # the item with an unresolved distractor is left out
    assert 0 < t["reproduction"]["reachable"] <= 1


def test_analyze_command(tmp_path, capsys):
    out = tmp_path / "report.json"
    rc = main(["negatives", "analyze", str(FIX / "classification_eval.json"), "--ontology", ONTO,
               "--json", str(out)])
    assert rc == 0
    printed = capsys.readouterr().out
    assert printed.splitlines()[0] == "0\t101.wav\telectric guitar\tacoustic guitar=sibling\tdrum=cousin\tcar=farther"
    full = json.loads(out.read_text(encoding="utf-8"))
    assert full["totals"]["by_relation"]["lineal"] == 1
    assert full["items"][3]["distractors"][2] == {"label": "theremin", "relation": "unresolved"}
    assert main(["negatives", "analyze", str(tmp_path / "missing.json"), "--ontology", ONTO]) == 2


@pytest.mark.skipif(not (REAL / "Classification_mini.json").exists(), reason="shared reference data absent")
def test_real_classification_mini():
    _, entries = read_eval_file(REAL / "Classification_mini.json")
    vocab = sorted({c for e in entries for c in e.choices})
    report = analyze(entries, OntologySampler(OntologyConfig(vocabulary=vocab)))
    t = report.totals
    assert t["items"] == 300 and t["answer_labels"] == 94 and t["by_relation"]["unresolved"] == 0
    close = t["by_relation"]["sibling"] + t["by_relation"]["cousin"]
    assert close / t["distractors"] > 0.6  # most released distractors are siblings or cousins
    assert t["reproduction"]["reachable"] > 0.45


# --- exact reports on hand-built items ---------------------------------------------------------------

_SAMPLER = OntologySampler(OntologyConfig(ontology=ONTO))  # every unrestricted class of the fixture


def _items() -> list[McqEntry]:
    """Five items: two with close distractors only, one with a farther one, two with an unresolved label."""
    return [McqEntry("0", "a.wav", "Q", ("Acoustic guitar", "Electric guitar", "Drum"), 1),
            McqEntry("1", "b.wav", "Q", ("Growling", "Bark"), 1),
            McqEntry("2", "c.wav", "Q", ("Meow", "Car", "Growling", "Bark"), 3),
            McqEntry("3", "d.wav", "Q", ("Bark", "Theremin", "Purr"), 0),
            McqEntry("4", "e.wav", "Q", ("Theremin", "Bark"), 0)]


def test_every_relation_a_distractor_can_have_to_the_answer():
    onto = load_ontology(ONTO)
    assert relation(onto, "Bark", "bark") == "lineal"  # the answer itself, differently spelled
    assert relation(onto, "Bark", "Dog") == "lineal"  # an ancestor
    assert relation(onto, "Dog", "Bark") == "lineal"  # a descendant
    assert relation(onto, "Bark", "Growling") == "sibling"
    assert relation(onto, "Bark", "Meow") == "cousin"
    assert relation(onto, "Bark", "Car") == "farther"
    assert relation(onto, "Bark", "Theremin") == "unresolved"
    assert relation(onto, "Theremin", "Bark") == "unresolved"


def test_the_report_json_lists_each_item_with_its_reachable_and_sampled_counts():
    # by hand: the reachable set of an answer is fixed by its first item (k = its number of distractors):
    # electric guitar, k=2 -> its two siblings {acoustic, bass}; bark, k=1 -> {growling}.
    # resolved items 0-2 hold 6 distractors, 3 of them reachable; pools: bark {growling, meow, car, theremin,
    # purr} and electric guitar {acoustic guitar, drum}, 1 + 1 of them reachable, out of 1 + 2 reachable labels.
    report = analyze(_items(), _SAMPLER)
    assert report.to_json() == {
        "totals": {
            "items": 5, "answer_labels": 3, "distractors": 9,
            "by_relation": {"sibling": 3, "cousin": 3, "farther": 1, "lineal": 0, "unresolved": 2},
            "by_relation_share": {"sibling": 0.3333, "cousin": 0.3333, "farther": 0.1111, "lineal": 0.0,
                                  "unresolved": 0.2222},
            "items_all_close": 2,
            "reproduction": {"items": 3, "reachable": 0.5, "sampled_overlap": 0.6667, "same_set": 0.3333,
                             "items_fully_reachable": 0.3333, "pool_recall": 0.2857, "pool_precision": 0.6667},
        },
        "items": [
            {"key": "0", "name": "a.wav", "answer": "Electric guitar",
             "distractors": [{"label": "Acoustic guitar", "relation": "sibling"},
                             {"label": "Drum", "relation": "cousin"}],
             "reachable": 1, "sampled": ["Acoustic guitar", "Bass guitar"], "overlap": 1},
            {"key": "1", "name": "b.wav", "answer": "Bark",
             "distractors": [{"label": "Growling", "relation": "sibling"}],
             "reachable": 1, "sampled": ["Growling"], "overlap": 1},
            {"key": "2", "name": "c.wav", "answer": "Bark",
             "distractors": [{"label": "Meow", "relation": "cousin"}, {"label": "Car", "relation": "farther"},
                             {"label": "Growling", "relation": "sibling"}],
             "reachable": 1, "sampled": ["Growling", "Meow", "Cat"], "overlap": 2},
            {"key": "3", "name": "d.wav", "answer": "Bark",
             "distractors": [{"label": "Theremin", "relation": "unresolved"}, {"label": "Purr", "relation": "cousin"}],
             "reachable": 0, "sampled": ["Growling", "Purr"], "overlap": 1},
            {"key": "4", "name": "e.wav", "answer": "Theremin",
             "distractors": [{"label": "Bark", "relation": "unresolved"}],
             "reachable": 0, "sampled": [], "overlap": 0},
        ],
    }
    assert analyze(_items(), _SAMPLER, seed=0).to_json() == report.to_json()  # the default seed is 0
    assert analyze(_items(), _SAMPLER, seed=1).items[0].sampled == ["Bass guitar", "Acoustic guitar"]  # another draw


def test_a_report_on_nothing_resolvable_has_shares_of_zero():
    zero = {rel: 0 for rel in ("sibling", "cousin", "farther", "lineal", "unresolved")}
    repro = {"items": 0, "reachable": 0.0, "sampled_overlap": 0.0, "same_set": 0.0, "items_fully_reachable": 0.0,
             "pool_recall": 0.0, "pool_precision": 0.0}
    assert analyze([], _SAMPLER).to_json() == {
        "totals": {"items": 0, "answer_labels": 0, "distractors": 0, "by_relation": zero,
                   "by_relation_share": {rel: 0.0 for rel in zero}, "items_all_close": 0, "reproduction": repro},
        "items": []}
    only_unknown = analyze([McqEntry("0", "x.wav", "Q", ("Theremin", "Kazoo"), 0)], _SAMPLER).totals
    assert only_unknown["by_relation_share"]["unresolved"] == 1.0 and only_unknown["reproduction"] == repro


def test_each_item_draw_is_seeded_by_the_seed_and_the_item_key():
    # one distractor for electric guitar: the draw picks one of its two siblings
    entries = [McqEntry(str(i), f"{i}.wav", "Q", ("Electric guitar", "Drum"), 0) for i in range(8)]

    def draws(seed: int) -> list[str]:
        return [r.sampled[0] for r in analyze(entries, _SAMPLER, seed=seed).items]

    at0 = draws(0)
    assert at0 == [_SAMPLER.sample("Electric guitar", 1, rng=make_rng(0, str(i)))[0] for i in range(8)]
    assert len(set(at0)) == 2  # items of one answer get different draws: the key is part of the seed
    assert draws(0) == at0
    assert draws(1) != at0 and draws(1) == [_SAMPLER.sample("Electric guitar", 1, rng=make_rng(1, str(i)))[0]
                                             for i in range(8)]
