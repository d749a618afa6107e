"""``afcot negatives analyze``: distractor relations and reproduction, on a fixture and on the real files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from afcot_negatives.analysis import analyze, relation
from afcot_negatives.evalfile import read_eval_file
from afcot_negatives.samplers import OntologyConfig, OntologySampler
from afcot_negatives.vocabulary import load_ontology

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
