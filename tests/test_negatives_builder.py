"""The MCQ builder, the AF-Reasoning-Eval file format and the ``afcot negatives build`` command."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

import pytest
from afcot_io.manifest import read_manifest
from afcot_negatives.builder import (
    BuildResult,
    LabelledClip,
    balanced_positions,
    build_mcq,
    manifest_lines,
    most_specific,
    read_labelled,
    write_manifest,
)
from afcot_negatives.evalfile import McqEntry, eval_document, format_prompt, read_eval_file, write_eval_file
from afcot_negatives.ontology import eval_label, label_key
from afcot_negatives.samplers import OntologyConfig, OntologySampler, PoolSampler, RandomConfig
from afcot_negatives.vocabulary import load_ontology

from afcot_core.cli import main
from afcot_core.errors import BadInput
from afcot_core.negatives import make_rng

FIX = Path(__file__).parent / "fixtures" / "negatives"
ONTO = str(FIX / "ontology.json")
SUFFIX = "Output the answer with <SUMMARY>, <CAPTION>, <REASONING>, and <CONCLUSION> tags."


@pytest.fixture(scope="module")
def onto():
    return load_ontology(ONTO)


@pytest.fixture(scope="module")
def sampler():
    return OntologySampler(OntologyConfig(ontology=ONTO))


def test_read_labelled_sources():
    csv_clips = read_labelled(FIX / "labels.csv")
    assert csv_clips[0] == LabelledClip("201", ("Electric_guitar", "Guitar", "Musical_instrument", "Music"))
    assert [c.clip for c in read_labelled(FIX / "labels.csv", split="val")] == ["203"]
    assert read_labelled(FIX / "labels.json")[2] == LabelledClip("303.wav", ("Crow",))
    assert read_labelled(FIX / "labels.jsonl")[1] == LabelledClip("402", ("Purr", "Cat"))


@pytest.mark.parametrize(("name", "text", "problem"), [
    ("a.csv", "file,tags\n1,x\n", "needs a header"),
    ("a.json", '{"1": 3}', "labels must be"),
    ("a.json", '[{"labels": ["x"]}]', r"\[0\]: needs a clip field"),
    ("a.jsonl", '{"clip": "1", "labels": []}\n{oops', "a.jsonl:2: not valid JSON"),
    ("a.json", '[{"clip": "1", "labels": []}, {"fname": "1", "labels": []}]', "clip '1' listed twice"),
])
def test_read_labelled_errors(tmp_path, name, text, problem):
    (tmp_path / name).write_text(text, encoding="utf-8")
    with pytest.raises(BadInput, match=problem):
        read_labelled(tmp_path / name)


def test_most_specific(onto):
    assert most_specific(onto, ("Bark", "Dog", "Animal"), "c") == ["Bark"]
    assert most_specific(onto, ("Male_speech_and_man_speaking", "Speech", "Bass_guitar", "Guitar"), "c") == [
        "Male_speech_and_man_speaking", "Bass_guitar"]
    with pytest.raises(BadInput, match="clip x: label 'Theremin'"):
        most_specific(onto, ("Theremin",), "clip x")


def test_balanced_positions():
    for n in (0, 1, 7, 400, 1001):
        counts = Counter(balanced_positions(n, 4, make_rng(1)))
        assert sum(counts.values()) == n and (n < 4 or max(counts.values()) - min(counts.values()) <= 1)
    assert balanced_positions(20, 4, make_rng(1)) != balanced_positions(20, 4, make_rng(2))


def test_build_from_fsd_style_csv(onto, sampler):
    result = build_mcq(read_labelled(FIX / "labels.csv"), sampler, onto, seed=3)
    by_name = {e.name: e for e in result.entries}
    assert set(by_name) == {"201.wav", "202.wav", "203.wav", "204.wav"}
    guitar = by_name["201.wav"]
    assert guitar.question == "Classify the sound."
    assert guitar.answer == "electric guitar" and len(guitar.choices) == 4
    assert {"acoustic guitar", "bass guitar"} <= set(guitar.distractors)
    mixed = by_name["203.wav"]  # male speech and bass guitar: one is the answer, the other never an option
    assert mixed.answer in {"male speech and man speaking", "bass guitar"}
    assert len({"male speech and man speaking", "bass guitar"} & set(mixed.choices)) == 1
    for e in result.entries:
        labels = {label_key(x) for x in result.labels[e.key]}
        assert not labels & {label_key(d) for d in e.distractors}
    skip = build_mcq(read_labelled(FIX / "labels.csv"), sampler, onto, ambiguous="skip")
    assert len(skip.entries) == 3 and skip.skipped == Counter({"several most specific labels": 1})


def test_too_few_negatives_are_skipped(onto):
    tiny = OntologySampler(OntologyConfig(ontology=ONTO, vocabulary=["Bark", "Growling", "Meow"]))
    result = build_mcq([LabelledClip("1", ("Bark",)), LabelledClip("2", ())], tiny, onto)
    assert result.entries == [] and result.skipped == Counter({"too few negatives": 1, "no labels": 1})


def test_builds_are_deterministic(onto, sampler):
    clips = read_labelled(FIX / "labels.json")
    assert build_mcq(clips, sampler, onto, seed=5).entries == build_mcq(clips, sampler, onto, seed=5).entries


def test_answer_letter_uniform_on_10k_items(onto):
    leaves = [c.name for c in onto if not c.child_ids and not c.restricted]
    rng = make_rng("clips")
    clips = [LabelledClip(f"{i:05d}", (rng.choice(leaves),)) for i in range(10_000)]
    result = build_mcq(clips, PoolSampler(RandomConfig(ontology=ONTO)), onto, seed=11)
    assert len(result.entries) == 10_000
    counts = Counter(e.answer_index for e in result.entries)
    for letter in range(4):
        assert abs(counts[letter] / 10_000 - 0.25) <= 0.25 * 0.05
    assert all(e.choices[e.answer_index] == e.answer for e in result.entries)


def test_eval_format_and_manifest(tmp_path, onto, sampler):
    result = build_mcq(read_labelled(FIX / "labels.json"), sampler, onto, seed=2)
    out = tmp_path / "eval.json"
    write_eval_file(out, result.entries, "FSD50k/eval", "AF-Reasoning-Eval-Classification-test")
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["dataset_path"] == "FSD50k/eval" and doc["total_num"] == 3 and list(doc["data"]) == ["0", "1", "2"]
    first = doc["data"]["0"]
    e = result.entries[0]
    letters = "ABCD"
    options = " ".join(f"({letters[i]}) {c}." for i, c in enumerate(e.choices))
    assert first["prompt"] == f"Classify the sound.\n{options} {SUFFIX}"
    assert first["output"] == f"({letters[e.answer_index]}) {e.answer}"
    assert read_eval_file(out)[1] == result.entries
    manifest = tmp_path / "items.jsonl"
    write_manifest(manifest, result, audio_prefix="audio/")
    lines = read_manifest(manifest)
    assert [ln.id for ln in lines] == ["301", "302", "303"]
    assert lines[0].audio == "audio/301.wav" and lines[0].kind == "classification"
    assert lines[0].answer in lines[0].choices and lines[0].labels == ["Car", "Vehicle"]
    assert manifest_lines(result)[1]["question"] == "Classify the sound."


def test_eval_file_reader_round_trips_and_rejects_bad_entries(tmp_path):
    header, entries = read_eval_file(FIX / "classification_eval.json")
    assert header["total_num"] == 4 and entries[1].answer == "bark" and entries[1].answer_index == 3
    doc = eval_document(entries, header["dataset_path"], header["flamingo_task"])
    assert doc == json.loads((FIX / "classification_eval.json").read_text(encoding="utf-8"))
    bad = {"0": {"name": "1.wav", "prompt": format_prompt("Q", ["a", "b"]), "output": "(C) c"}}
    path = tmp_path / "bad.json"
    path.write_text(json.dumps({"data": bad}), encoding="utf-8")
    with pytest.raises(BadInput, match=r"data.0.output: expected '\(X\) option'"):
        read_eval_file(path)
    path.write_text(json.dumps({"data": {"0": {"name": "1", "prompt": "Q\n(B) a.", "output": "(B) a"}}}))
    with pytest.raises(BadInput, match="options are not"):
        read_eval_file(path)
    path.write_text(json.dumps({"data": {"0": {"name": "1", "prompt": "Q\n(A) a.", "output": "(A) b"}}}))
    with pytest.raises(BadInput, match="is not option"):
        read_eval_file(path)
    assert McqEntry("0", "x", "Q", ("a", "b"), 1).distractors == ["a"]


def test_build_command(tmp_path, capsys):
    ev, man = tmp_path / "eval.json", tmp_path / "items.jsonl"
    rc = main(["negatives", "build", str(FIX / "labels.csv"), "--ontology", ONTO, "--eval-out", str(ev),
               "--manifest-out", str(man), "--seed", "4", "--task", "T"])
    assert rc == 0
    report = json.loads(capsys.readouterr().out)
    assert report["items"] == 4 and sum(report["answer_letters"].values()) == 4
    assert json.loads(ev.read_text(encoding="utf-8"))["flamingo_task"] == "T"
    assert len(read_manifest(man)) == 4
    rc = main(["negatives", "build", str(FIX / "labels.csv"), "--sampler", "random", "--ontology", ONTO,
               "--eval-out", str(ev)])
    assert rc == 0
    assert main(["negatives", "build", str(FIX / "labels.csv"), "--ontology", ONTO]) == 2
    assert main(["negatives", "build", str(FIX / "labels.csv"), "--sampler", "ontologgy", "--ontology", ONTO,
                 "--eval-out", str(ev)]) == 2
    assert "did you mean 'ontology'" in capsys.readouterr().err


def test_sample_command(capsys):
    assert main(["negatives", "sample", "bark", "-k", "1", "--ontology", ONTO]) == 0
    assert json.loads(capsys.readouterr().out) == ["Growling"]
    assert main(["negatives", "sample", "theremin", "--ontology", ONTO]) == 2


# --- exact behaviour on small hand-made inputs ------------------------------------------------------

CLIP_FIELDS = "fname/clip/audio/file/filename/name"


def test_a_labelled_object_takes_its_clip_from_the_first_non_empty_field(tmp_path):
    path = tmp_path / "a.json"
    path.write_text(json.dumps([{"fname": "", "clip": "c1", "labels": ["Bark"]},
                                {"fname": None, "audio": "c2.wav", "name": "x", "labels": "Bark, Dog"}]),
                    encoding="utf-8")
    assert read_labelled(path) == [LabelledClip("c1", ("Bark",)), LabelledClip("c2.wav", ("Bark", "Dog"))]


def test_a_csv_row_with_empty_or_missing_labels_has_no_labels(tmp_path):
    path = tmp_path / "a.csv"
    path.write_text('fname,labels\n1,\n2\n3," Bark ,Dog,"\n', encoding="utf-8")
    assert read_labelled(path) == [LabelledClip("1", ()), LabelledClip("2", ()), LabelledClip("3", ("Bark", "Dog"))]


@pytest.mark.parametrize(("name", "text", "message"), [
    ("a.json", "[3]", "{p}[0]: expected an object"),
    ("a.json", '[{"clip": "1", "labels": []}, {"labels": ["x"]}]',
     "{p}[1]: needs a clip field (" + CLIP_FIELDS + ") and 'labels'"),
    ("a.json", '[{"clip": "1", "labels": 3}]',
     "{p}[0].labels: labels must be a list of strings or a comma-separated string"),
    ("a.json", '{"1": ["x"], "2": 3}', "{p}: 2: labels must be a list of strings or a comma-separated string"),
    ("a.json", '"x"', "{p}: expected a JSON object or list"),
    ("a.jsonl", '{"clip": "1", "labels": []}\n\n3\n', "{p}:3: expected an object"),
    ("a.csv", "id,labels\n1,x\n", "{p}: needs a header with a clip column (" + CLIP_FIELDS + "), 'labels'"),
])
def test_labelled_source_errors_name_the_file_and_the_record(tmp_path, name, text, message):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(BadInput) as info:
        read_labelled(path)
    assert str(info.value) == message.format(p=path)


def test_unreadable_or_malformed_labelled_sources_name_the_file(tmp_path):
    missing = tmp_path / "missing.json"
    with pytest.raises(BadInput) as info:
        read_labelled(missing)
    assert str(info.value).startswith(f"{missing}: cannot read (")
    bad = tmp_path / "bad.json"
    bad.write_text("{oops", encoding="utf-8")
    with pytest.raises(BadInput) as info:
        read_labelled(bad)
    assert str(info.value).startswith(f"{bad}: not valid JSON (")


_LOCALE_SCRIPT = """
import json, sys
from pathlib import Path
from afcot_negatives.builder import BuildResult, read_labelled, write_manifest
from afcot_negatives.evalfile import McqEntry
src, out = Path(sys.argv[1]), Path(sys.argv[2])
clips = read_labelled(src)
result = BuildResult([McqEntry("0", clips[0].clip, "Q", ("caf\\u00e9", "b"), 0)], {"0": clips[0].labels})
write_manifest(out, result)
"""


def test_labelled_sources_and_manifests_are_utf8_whatever_the_locale(tmp_path):
    import os
    import subprocess
    import sys

    src, out = tmp_path / "labels.json", tmp_path / "items.jsonl"
    src.write_text('{"café.wav": ["Café_noise"]}', encoding="utf-8")
    env = {**os.environ, "LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"}
    env.pop("PYTHONIOENCODING", None)
    run = subprocess.run([sys.executable, "-c", _LOCALE_SCRIPT, str(src), str(out)], env=env,
                         capture_output=True, text=True, check=False)
    assert run.returncode == 0, run.stderr
    line = json.loads(out.read_bytes().decode("utf-8"))
    assert line["audio"] == "café.wav" and line["labels"] == ["Café_noise"] and line["answer"] == "café"


def _hand_result() -> BuildResult:
    return BuildResult([McqEntry("0", "dir/x1.wav", "Q?", ("café", "bark"), 1)], {"0": ("Bark", "Dog")})


def test_a_manifest_line_without_prefix_points_at_the_entry_name():
    assert manifest_lines(_hand_result()) == [{"id": "x1", "audio": "dir/x1.wav", "question": "Q?", "answer": "bark",
                                               "kind": "classification", "choices": ["café", "bark"],
                                               "labels": ["Bark", "Dog"]}]


def test_a_written_manifest_keeps_non_ascii_text_as_written(tmp_path):
    path = tmp_path / "items.jsonl"
    write_manifest(path, _hand_result())
    text = path.read_text(encoding="utf-8")
    assert text == ('{"id": "x1", "audio": "dir/x1.wav", "question": "Q?", "answer": "bark", '
                    '"kind": "classification", "choices": ["café", "bark"], "labels": ["Bark", "Dog"]}\n')


_PETS = ["Bark", "Growling", "Meow", "Purr"]


def test_skipped_clips_are_counted_per_reason_and_the_rest_still_built(onto):
    pets = OntologySampler(OntologyConfig(ontology=ONTO, vocabulary=_PETS))
    clips = [LabelledClip("e1", ()), LabelledClip("g1", ("Bark",)), LabelledClip("e2", ()),
             LabelledClip("a1", ("Bark", "Meow")), LabelledClip("a2", ("Growling", "Purr")),
             LabelledClip("t1", ("Dog",)), LabelledClip("t2", ("Cat",)), LabelledClip("g2.flac", ("Meow",))]
    result = build_mcq(clips, pets, onto, ambiguous="skip")
    assert [e.name for e in result.entries] == ["g1.wav", "g2.flac"]
    assert result.skipped == Counter({"no labels": 2, "several most specific labels": 2, "too few negatives": 2})
    assert [sorted(e.choices) for e in result.entries] == [["bark", "growling", "meow", "purr"]] * 2


def test_an_unknown_label_names_its_clip(onto, sampler):
    with pytest.raises(BadInput, match=r"^clip 'x9': label 'Theremin' is not in "):
        build_mcq([LabelledClip("x9", ("Bark", "Theremin"))], sampler, onto)


_AMBIGUOUS = [LabelledClip(f"c{i}", ("Bark", "Meow")) for i in range(8)]


def test_an_ambiguous_clip_answers_with_a_leaf_drawn_from_the_seed_and_the_clip(onto, sampler):
    result = build_mcq(_AMBIGUOUS, sampler, onto, seed=5)
    expected = [random.Random(f"5:answer:c{i}").choice(["bark", "meow"]) for i in range(8)]
    assert [e.answer for e in result.entries] == expected
    assert expected == ["meow", "meow", "bark", "bark", "bark", "meow", "meow", "bark"]


def test_negatives_are_asked_per_clip_seeded_by_seed_and_clip_avoiding_the_other_labels(onto, sampler):
    result = build_mcq(_AMBIGUOUS, sampler, onto, seed=5)
    asked = []
    for clip, e in zip(_AMBIGUOUS, result.entries, strict=True):
        other = "Meow" if e.answer == "bark" else "Bark"
        assert eval_label(other) not in e.choices
        asked.append([eval_label(x) for x in sampler.sample(e.answer, 3, exclude=[other], seed=f"5:{clip.clip}")])
    assert [e.distractors for e in result.entries] == asked
    assert len({tuple(a) for a in asked}) > 2  # the clip, not only the answer, seeds the draw


def test_answer_letters_follow_a_balanced_shuffle_seeded_by_the_seed(onto, sampler):
    result = build_mcq(_AMBIGUOUS, sampler, onto, seed=5)
    positions = [0, 1, 2, 3, 0, 1, 2, 3]
    random.Random("5:letters").shuffle(positions)
    assert [e.answer_index for e in result.entries] == positions == [0, 2, 3, 2, 1, 0, 1, 3]
    assert all(e.choices[e.answer_index] == e.answer for e in result.entries)


def test_the_default_seed_is_zero(onto, sampler):
    assert build_mcq(_AMBIGUOUS, sampler, onto).entries == build_mcq(_AMBIGUOUS, sampler, onto, seed=0).entries
    assert build_mcq(_AMBIGUOUS, sampler, onto).entries != build_mcq(_AMBIGUOUS, sampler, onto, seed=1).entries


def test_as_is_style_keeps_the_spelling_of_the_source_and_vocabulary(onto):
    vocab = OntologySampler(OntologyConfig(ontology=ONTO, vocabulary=str(FIX / "vocabulary.csv")))
    entry = build_mcq([LabelledClip("1", ("Electric_guitar",))], vocab, onto, style="as-is").entries[0]
    assert entry.answer == "Electric_guitar"
    assert set(entry.distractors) <= {"Acoustic_guitar", "Bass_guitar", "Drum"}


def test_options_sets_how_many_choices_each_item_has(onto, sampler):
    result = build_mcq([LabelledClip(f"{i}", ("Bark",)) for i in range(6)], sampler, onto, options=3)
    assert [len(e.choices) for e in result.entries] == [3] * 6
    assert sorted(e.answer_index for e in result.entries) == [0, 0, 1, 1, 2, 2]
