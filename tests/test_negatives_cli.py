"""``afcot negatives``: each option reaches what it sets, and what the commands print and write equals what the
library computes with the same settings."""

import json
from pathlib import Path

import pytest
from afcot_io.manifest import read_manifest
from afcot_negatives.analysis import analyze
from afcot_negatives.builder import build_mcq, read_labelled
from afcot_negatives.evalfile import read_eval_file
from afcot_negatives.samplers import OntologyConfig, OntologySampler
from afcot_negatives.vocabulary import load_ontology

from afcot_core.cli import main

from .conftest import parse_cli

FIX = Path(__file__).parent / "fixtures" / "negatives"
ONTO = str(FIX / "ontology.json")
LABELS = str(FIX / "labels.csv")


def _out(capsys):
    return capsys.readouterr().out


def test_sample_passes_its_options_to_the_sampler(capsys):
    config = OntologyConfig(ontology=ONTO, seed=7, fallback="nearest", close="pooled",
                            vocabulary=str(FIX / "vocabulary.csv"))
    expected = OntologySampler(config).sample("bark", 4, exclude=["Growling"], seed=7)
    assert main(["negatives", "sample", "bark", "-k", "4", "--exclude", "Growling", "--ontology", ONTO,
                 "--seed", "7", "--fallback", "nearest", "--close", "pooled",
                 "--vocabulary", str(FIX / "vocabulary.csv")]) == 0
    assert json.loads(_out(capsys)) == expected and "Growling" not in expected and len(expected) == 4


def test_build_writes_what_the_builder_makes_with_the_same_settings(tmp_path, capsys):
    ev, man = tmp_path / "eval.json", tmp_path / "items.jsonl"
    assert main(["negatives", "build", LABELS, "--ontology", ONTO, "--eval-out", str(ev), "--manifest-out",
                 str(man), "--seed", "5", "--options", "3", "--ambiguous", "skip", "--style", "as-is",
                 "--audio-ext", ".flac", "--audio-prefix", "clips/", "--dataset-path", "D/x", "--task", "T",
                 "--fallback", "none", "--close", "pooled", "--split", "train"]) == 0
    printed = json.loads(_out(capsys))
    sampler = OntologySampler(OntologyConfig(ontology=ONTO, seed=5, fallback="none", close="pooled"))
    clips = read_labelled(LABELS, "train")
    result = build_mcq(clips, sampler, load_ontology(ONTO), options=3, seed=5, ambiguous="skip", style="as-is",
                       audio_ext=".flac")
    letters = [sum(e.answer_index == i for e in result.entries) for i in range(3)]
    assert printed == {"clips": len(clips), "items": len(result.entries), "skipped": dict(result.skipped),
                       "answer_letters": dict(zip("ABC", letters, strict=True))}
    meta, entries = read_eval_file(ev)
    assert (meta["flamingo_task"], meta["dataset_path"], meta["total_num"]) == ("T", "D/x", len(result.entries))
    assert [e.choices for e in entries] == [e.choices for e in result.entries]
    rows = read_manifest(man)
    assert len(rows) == len(result.entries) and all(r.audio.startswith("clips/") for r in rows)
    assert all(r.audio.endswith(".flac") for r in rows)


def test_build_without_an_output_is_refused(capsys):
    assert main(["negatives", "build", LABELS, "--ontology", ONTO]) == 2
    assert "give --eval-out and/or --manifest-out" in capsys.readouterr().err


def test_analyze_prints_a_line_per_item_then_the_totals_and_writes_the_report(tmp_path, capsys):
    eval_file = FIX / "classification_eval.json"
    report_file = tmp_path / "report.json"
    assert main(["negatives", "analyze", str(eval_file), "--ontology", ONTO, "--seed", "3", "--close", "pooled",
                 "--json", str(report_file)]) == 0
    _, entries = read_eval_file(eval_file)
    onto = load_ontology(ONTO)
    vocabulary = sorted({c for e in entries for c in e.choices if onto.resolve(c) is not None})
    report = analyze(entries, OntologySampler(OntologyConfig(ontology=ONTO, vocabulary=vocabulary, seed=3,
                                                             close="pooled")), 3)
    lines = [f"{r.key}\t{r.name}\t{r.answer}\t" + "\t".join(f"{d}={rel}" for d, rel in r.relations.items())
             for r in report.items]
    assert _out(capsys) == "\n".join(lines) + "\n" + json.dumps(report.totals, indent=2) + "\n"
    assert json.loads(report_file.read_text(encoding="utf-8")) == report.to_json()
    assert main(["negatives", "analyze", str(eval_file), "--ontology", ONTO, "--seed", "3", "--close", "pooled",
                 "--totals-only"]) == 0
    assert json.loads(_out(capsys)) == report.totals


@pytest.fixture
def parse(plugins):
    return lambda *args: vars(parse_cli(plugins, "negatives", *args))


SAMPLER_DEFAULTS = {"ontology": None, "vocabulary": None, "fallback": "random", "close": "tiered", "seed": 0}


def test_each_command_s_defaults(parse):
    analyze = parse("analyze", "f.json")
    assert {k: analyze[k] for k in (*SAMPLER_DEFAULTS, "negatives_action", "file", "json_out", "totals_only")} == {
        **SAMPLER_DEFAULTS, "negatives_action": "analyze", "file": "f.json", "json_out": None, "totals_only": False}
    build = parse("build", "l.csv")
    assert {k: build[k] for k in (*SAMPLER_DEFAULTS, "labels", "sampler", "eval_out", "manifest_out", "split",
                                  "options", "ambiguous", "style", "audio_ext", "audio_prefix", "dataset_path",
                                  "task")} == {
        **SAMPLER_DEFAULTS, "labels": "l.csv", "sampler": "ontology", "eval_out": None, "manifest_out": None,
        "split": None, "options": 4, "ambiguous": "random", "style": "eval", "audio_ext": ".wav", "audio_prefix": "",
        "dataset_path": "FSD50k/eval", "task": "AF-Reasoning-Eval-Classification"}
    sample = parse("sample", "bark")
    assert {k: sample[k] for k in (*SAMPLER_DEFAULTS, "label", "k", "sampler", "exclude")} == {
        **SAMPLER_DEFAULTS, "label": "bark", "k": 3, "sampler": "ontology", "exclude": []}
    assert parse("sample", "x", "-k", "2", "--seed", "9", "--exclude", "a", "--exclude", "b")["exclude"] == ["a", "b"]
    assert (parse("build", "l", "--options", "5")["options"], parse("sample", "x", "--seed", "9")["seed"]) == (5, 9)


def test_each_choice_is_accepted_and_anything_else_refused(parse, capsys):
    for option, choices in (("--fallback", ("random", "nearest", "none")), ("--close", ("tiered", "pooled"))):
        for command in (["analyze", "f"], ["build", "l"], ["sample", "x"]):
            for choice in choices:
                assert parse(*command, option, choice)[option.lstrip("-")] == choice
    for option, choices in (("--ambiguous", ("random", "skip")), ("--style", ("eval", "as-is"))):
        for choice in choices:
            assert parse("build", "l", option, choice)[option.lstrip("-")] == choice
    for args in (["sample", "x", "--close", "near"], ["build", "l", "--style", "x"], ["analyze"], []):
        with pytest.raises(SystemExit) as exit:
            parse(*args)
        assert exit.value.code == 2
    capsys.readouterr()
