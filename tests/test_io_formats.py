"""The interchange formats read and written by afcot_io.formats: AF-Think / AF3 training JSON (JSON list or JSON
lines), multi-audio records, AF2 manifests, and the question, options and answer read from a training sample."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from afcot_io.formats import (
    MULTI_AUDIO,
    PAST_SECOND,
    TEXT_ONLY,
    AfThinkFile,
    Conversation,
    af2_manifest,
    answer_of,
    load_afthink,
    multi_audio_record,
    read_af2_manifest,
    split_prompt,
    strip_placeholders,
)

from afcot_core.errors import BadInput
from afcot_core.template import COT_SUFFIX

CHOOSE = "Choose the correct option from the following options:"


def turn(user: str, assistant: str) -> list[dict[str, str]]:
    return [{"from": "human", "value": user}, {"from": "gpt", "value": assistant}]


def write(tmp_path: Path, records, name: str = "think.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(records))
    return path


def refusal(call, *args) -> str:
    with pytest.raises(BadInput) as err:
        call(*args)
    return str(err.value)


# --- AF-Think files: JSON list or JSON lines ------------------------------------------------------------------------


def test_json_lines_skip_blank_lines_anywhere_and_read_every_record(tmp_path):
    path = tmp_path / "think.jsonl"
    lines = [json.dumps({"id": f"r{i}", "sound": f"{i}.wav", "conversations": turn("<sound>\nQ?", "A.")})
             for i in range(3)]
    path.write_text(f"{lines[0]}\n\n   \n{lines[1]}\n\n{lines[2]}\n")
    assert [c.id for c in load_afthink(path).records] == ["r0", "r1", "r2"]


def test_a_json_lines_file_with_a_broken_line_is_refused_naming_the_line(tmp_path):
    path = tmp_path / "think.jsonl"
    good = json.dumps({"id": "a", "sound": "a.wav", "conversations": turn("Q?", "A.")})
    path.write_text(f"{good}\n\n{good}\n{{broken\n")
    message = refusal(load_afthink, path)
    assert message.startswith(f"{path}: neither a JSON list nor JSON lines (line 4: ")


def test_a_json_lines_entry_that_is_not_an_object_is_named_by_file_and_entry(tmp_path):
    path = tmp_path / "think.jsonl"
    path.write_text(json.dumps({"id": "a", "sound": "a.wav", "conversations": turn("Q?", "A.")}) + "\n3\n")
    assert refusal(load_afthink, path) == f"{path}: entry 1: expected an object, got int"


def test_a_missing_file_and_a_file_that_is_not_text_are_refused_as_such(tmp_path):
    missing = tmp_path / "none.json"
    assert refusal(load_afthink, missing) == f"{missing}: file not found"
    binary = tmp_path / "think.json"
    binary.write_bytes(b"\xff\xfe\x00[not json")
    assert refusal(load_afthink, binary).startswith(f"{binary}: not a readable JSON file (")


# --- AF-Think records -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("conversations, message", [
    ([], "record 0.conversations: expected human/gpt pairs"),
    ({"from": "human"}, "record 0.conversations: expected human/gpt pairs"),
    (turn("Q?", "A.")[:1], "record 0.conversations: expected human/gpt pairs"),
    (turn("Q?", "A.") + turn("More?", "B.")[:1], "record 0.conversations: expected human/gpt pairs"),
    (turn("Q?", "A.")[::-1], "record 0.conversations[0]: expected a 'human' turn followed by a 'gpt' turn"),
    ([*turn("Q?", "A."), {"from": "human", "value": "x"}, {"from": "human", "value": "y"}],
     "record 0.conversations[2]: expected a 'human' turn followed by a 'gpt' turn"),
    ([*turn("Q?", "A."), {"from": "gpt", "value": "x"}, {"from": "gpt", "value": "y"}],
     "record 0.conversations[2]: expected a 'human' turn followed by a 'gpt' turn"),
    (["Q?", {"from": "gpt", "value": "A."}],
     "record 0.conversations[0]: expected a 'human' turn followed by a 'gpt' turn"),
    ([{"from": "human", "value": "Q?"}, "A."],
     "record 0.conversations[0]: expected a 'human' turn followed by a 'gpt' turn"),
    ([{"from": "human", "value": 3}, {"from": "gpt", "value": "A."}],
     "record 0.conversations[0].value: expected a string, got int"),
    ([{"from": "human", "value": "Q?"}, {"from": "gpt"}],
     "record 0.conversations[1].value: expected a string, got NoneType"),
    ([*turn("Q?", "A."), {"from": "human", "value": "x"}, {"from": "gpt", "value": ["y"]}],
     "record 0.conversations[3].value: expected a string, got list"),
])
def test_turns_out_of_human_gpt_pairs_are_refused_naming_the_turn(tmp_path, conversations, message):
    path = write(tmp_path, [{"id": "x", "sound": ["a.wav"], "conversations": conversations}])
    assert refusal(load_afthink, path) == f"{path}: {message}"


@pytest.mark.parametrize("duration, message", [
    (-0.5, "expected a number of seconds >= 0, got -0.5"),
    (True, "expected a number of seconds >= 0, got True"),
    ("4", "expected a number of seconds >= 0, got '4'"),
    (None, "expected a number of seconds >= 0, got None"),
])
def test_a_duration_that_is_not_seconds_is_refused_with_the_value(tmp_path, duration, message):
    path = write(tmp_path, [{"id": "x", "sound": "a.wav", "duration": duration, "conversations": turn("Q?", "A.")}])
    assert refusal(load_afthink, path) == f"{path}: record 0.duration: {message}"


def test_a_duration_of_zero_or_a_whole_number_is_read_as_seconds(tmp_path):
    path = write(tmp_path, [
        {"id": "z", "sound": "a.wav", "duration": 0, "conversations": turn("Q?", "A.")},
        {"id": "w", "sound": ["b.wav"], "duration": 3, "conversations": turn("<sound-1> Q?", "A.")}])
    durations = [c.duration for c in load_afthink(path).records]
    assert durations == [0.0, 3.0] and all(type(d) is float for d in durations)


def test_a_record_without_an_id_is_named_by_its_position(tmp_path):
    path = write(tmp_path, [{"id": 7, "sound": "a.wav", "conversations": turn("Q?", "A.")},
                            {"sound": "b.wav", "conversations": turn("Q?", "A.")},
                            {"conversations": turn("Q?", "A.")}])
    loaded = load_afthink(path)
    assert [c.id for c in loaded.records] == ["7", "1"]
    assert loaded.skipped == {TEXT_ONLY: ["2"]}


def test_a_string_sound_keeps_its_path_and_the_first_turn_stripped_at_the_end(tmp_path):
    path = write(tmp_path, [{"id": "s", "sound": "clips/a.wav", "duration": 1.5,
                             "conversations": turn("<sound>\nWhat is it?  \n", "  A bell.\n ")}])
    assert load_afthink(path).records == [Conversation("s", "clips/a.wav", (("What is it?", "  A bell."),), 1.5)]


def test_a_string_sound_with_one_turn_is_not_reported_as_cut(tmp_path):
    path = write(tmp_path, [{"id": "s", "sound": "a.wav", "conversations": turn("<sound>\nQ?", "A.")}])
    assert load_afthink(path).skipped == {}


def test_the_first_path_a_tag_names_is_the_clip_and_tags_anywhere_are_removed(tmp_path):
    path = write(tmp_path, [
        {"id": "second", "sound": ["other.wav", "b.wav"], "duration": 2.0,
         "conversations": turn("Listen:\n<sound-2>\nWhat is it?\n", "It is <sound-2> a bell.\n")},
        {"id": "same", "sound": ["c.wav", "c.wav"],
         "conversations": turn("<sound-1>\nFirst?", "Yes.")
         + turn("And <sound-2>?", "<sound-2>\nSame\n<sound-1> clip.")},
    ])
    loaded = load_afthink(path)
    assert loaded.records == [
        Conversation("second", "b.wav", (("Listen:\nWhat is it?", "It is  a bell."),), 2.0),
        Conversation("same", "c.wav", (("First?", "Yes."), ("And ?", "Same clip.")), 10.0)]
    assert loaded.skipped == {}


def test_a_tag_in_the_answer_alone_names_the_clip(tmp_path):
    path = write(tmp_path, [{"id": "a", "sound": ["a.wav"], "conversations": turn("What is it?", "<sound-1> A bell.")}])
    assert load_afthink(path).records[0].turns == (("What is it?", " A bell."),)


def test_records_of_several_clips_or_none_are_skipped_in_their_order(tmp_path):
    path = write(tmp_path, [
        {"id": "two", "sound": ["a.wav", "b.wav"], "conversations": turn("<sound-1> <sound-2> Same?", "No.")},
        {"id": "untagged", "sound": ["a.wav"], "conversations": turn("Q?", "A.")},
        {"id": "empty", "sound": [], "conversations": turn("Q?", "A.")},
        {"id": "also-two", "sound": ["a.wav", "b.wav"],
         "conversations": turn("<sound-1> Q?", "A.") + turn("<sound-2> Q?", "B.")},
        {"id": "null", "sound": None, "conversations": turn("Q?", "A.")},
        {"id": "long", "sound": "a.wav", "conversations": turn("Q?", "A.") + turn("Q2?", "B.") + turn("Q3?", "C.")},
        {"id": "two-turns", "sound": "a.wav", "conversations": turn("Q?", "A.") + turn("Q2?", "B.")},
    ])
    loaded = load_afthink(path)
    assert [c.id for c in loaded.records] == ["long", "two-turns"]
    assert loaded.skipped == {MULTI_AUDIO: ["two", "also-two"], TEXT_ONLY: ["untagged", "empty", "null"],
                              PAST_SECOND: ["long", "two-turns"]}


@pytest.mark.parametrize("sound, user, message", [
    (["a.wav"], "<sound-0> Q?", "record 0: <sound-0> names no entry of 'sound' (1 given)"),
    (["a.wav", "b.wav"], "<sound-3> <sound-5> <sound-1>", "record 0: <sound-3> names no entry of 'sound' (2 given)"),
    (["a.wav", 4], "<sound-1> Q?", "record 0.sound[1]: expected a string, got int"),
    ({"path": "a.wav"}, "Q?", "record 0.sound: expected a path or a list of paths, got dict"),
])
def test_a_sound_list_that_the_tags_do_not_fit_is_refused_naming_the_record(tmp_path, sound, user, message):
    path = write(tmp_path, [{"id": "x", "sound": sound, "conversations": turn(user, "A.")}])
    assert refusal(load_afthink, path) == f"{path}: {message}"


def test_the_skipped_summary_lists_each_reason_in_order_with_its_count_and_first_record():
    loaded = AfThinkFile([], {TEXT_ONLY: ["t1", "t2"], MULTI_AUDIO: ["m1"]})
    assert loaded.summary(Path("d/think.json")) == (
        "d/think.json: 1 multi-audio record(s) skipped (first: m1); 2 text-only record(s) skipped (first: t1)")
    assert AfThinkFile([]).summary(Path("x.json")) is None


def test_the_loader_s_placeholders_are_removed_with_a_newline_on_either_side():
    assert strip_placeholders("<speech>\nQ one\n<en><asr>") == "Q one"
    assert strip_placeholders("A<eng><asr>B<sound>\n") == "AB"
    assert strip_placeholders("Q\n<sound>\nmore") == "Q\nmore"
    assert strip_placeholders("<sound>\n<speech>\nQ   ") == "Q"


# --- multi-audio records --------------------------------------------------------------------------------------------


def test_a_multi_audio_record_lists_every_path_and_every_turn_as_given():
    turns = [("<sound-1>\nFirst clip?", "A dog."), ("And this one?", "<sound-2> A cat.")]
    assert multi_audio_record("m", ("a.flac", "b.flac"), turns, 3.5) == {
        "id": "m", "sound": ["a.flac", "b.flac"], "duration": 3.5,
        "conversations": [{"from": "human", "value": "<sound-1>\nFirst clip?"}, {"from": "gpt", "value": "A dog."},
                          {"from": "human", "value": "And this one?"}, {"from": "gpt", "value": "<sound-2> A cat."}]}


@pytest.mark.parametrize("sounds, turns", [
    (["a", "b"], [("No tag?", "No.")]),
    (["a", "b"], [("<sound-0> <sound-1> <sound-2>", "x")]),
    (["a", "b"], [("<sound-0> <sound-1>", "x")]),
    (["a", "b"], [("<sound-1> <sound-3>", "x")]),
    (["a", "b"], [("<sound-2>", "x")]),
    (["a", "b", "c"], [("<sound-1>", "<sound-3>")]),
])
def test_a_multi_audio_record_is_refused_unless_its_tags_name_each_path(sounds, turns):
    with pytest.raises(ValueError) as err:
        multi_audio_record("m", sounds, turns, 1.0)
    assert str(err.value) == f"record m: the <sound-k> tags must name each of the {len(sounds)} paths"


def test_a_multi_audio_record_reads_back_as_several_clips(tmp_path):
    rec = multi_audio_record("m", ["a.flac", "b.flac"], [("<sound-1>\n<sound-2>\nSame?", "No.")], 2.0)
    loaded = load_afthink(write(tmp_path, [rec]))
    assert loaded.records == [] and loaded.skipped == {MULTI_AUDIO: ["m"]}


# --- AF2 manifests --------------------------------------------------------------------------------------------------


def test_an_af2_manifest_is_written_with_its_split_task_count_and_entries():
    convs = [Conversation("a", "x/a.wav", (("Q1?", "A1."),), 2.5), Conversation("b", "b.wav", (("Q2?", "A2."),), 0.0)]
    assert af2_manifest(convs, "train", "clips", "AQA") == {
        "split": "train", "split_path": "clips", "flamingo_task": "AQA", "total_num": 2,
        "data": {"0": {"name": "x/a.wav", "prompt": "Q1?", "output": "A1.", "duration": 2.5},
                 "1": {"name": "b.wav", "prompt": "Q2?", "output": "A2.", "duration": 0.0}}}


def test_an_af2_manifest_reads_back_as_written(tmp_path):
    convs = [Conversation("0", "x/a.wav", (("Q1?", "A1."),), 2.5), Conversation("1", "b.wav", (("Q2?", "A2."),), 4.0)]
    path = write(tmp_path, af2_manifest(convs, "test", "clips/test", "AQA"), "manifest.json")
    assert read_af2_manifest(path) == ("clips/test", convs)


def test_an_af2_manifest_names_its_folder_split_path_first_then_dataset_path(tmp_path):
    entry = {"k": {"name": "a.wav", "prompt": "Q?", "output": "A."}}
    both = write(tmp_path, {"split_path": "s", "dataset_path": "d", "data": entry}, "both.json")
    eval_file = write(tmp_path, {"dataset_path": "d", "data": entry}, "eval.json")
    folder, convs = read_af2_manifest(eval_file)
    assert read_af2_manifest(both)[0] == "s" and folder == "d"
    # the key is the id; no duration (or a null one) reads as 0 s
    assert convs == [Conversation("k", "a.wav", (("Q?", "A."),), 0.0)]


def test_an_af2_entry_with_a_null_duration_reads_as_zero_seconds(tmp_path):
    path = write(tmp_path, {"split_path": "s", "data": {"0": {"name": "a.wav", "prompt": "Q?", "output": "A.",
                                                              "duration": None}}}, "m.json")
    assert read_af2_manifest(path)[1][0].duration == 0.0


@pytest.mark.parametrize("doc, message", [
    ([], "expected an object with a 'data' object (an AF2 manifest)"),
    ({"split_path": "s", "data": []}, "expected an object with a 'data' object (an AF2 manifest)"),
    ({"split_path": "s"}, "expected an object with a 'data' object (an AF2 manifest)"),
    ({"data": {}}, "missing key 'split_path' (or 'dataset_path')"),
    ({"split_path": 3, "data": {}}, "missing key 'split_path' (or 'dataset_path')"),
    ({"split_path": "s", "data": {"0": {"name": "a.wav", "prompt": "Q?", "output": "A."}, "1": "b.wav"}},
     "data.1: expected an object"),
    ({"split_path": "s", "data": {"0": {"prompt": "Q?", "output": "A."}}}, "data.0: missing key 'name'"),
    ({"split_path": "s", "data": {"0": {"name": "a.wav", "output": "A."}}}, "data.0: missing key 'prompt'"),
    ({"split_path": "s", "data": {"0": {"name": "a.wav", "prompt": "Q?"}}}, "data.0: missing key 'output'"),
    ({"split_path": "s", "data": {"0": {"name": 1, "prompt": "Q?", "output": "A."}}},
     "data.0.name: expected a string, got int"),
    ({"split_path": "s", "data": {"0": {"name": "a.wav", "prompt": None, "output": "A."}}},
     "data.0.prompt: expected a string, got NoneType"),
    ({"split_path": "s", "data": {"0": {"name": "a.wav", "prompt": "Q?", "output": ["A."]}}},
     "data.0.output: expected a string, got list"),
    ({"split_path": "s", "data": {"0": {"name": "a.wav", "prompt": "Q?", "output": "A.", "duration": "long"}}},
     "data.0.duration: expected a number of seconds >= 0, got 'long'"),
    ({"split_path": "s", "data": {"0": {"name": "a.wav", "prompt": "Q?", "output": "A.", "duration": -3}}},
     "data.0.duration: expected a number of seconds >= 0, got -3"),
    ({"split_path": "s", "data": {"0": {"name": "a.wav", "prompt": "Q?", "output": "A.", "duration": True}}},
     "data.0.duration: expected a number of seconds >= 0, got True"),
])
def test_an_af2_manifest_that_breaks_the_format_is_refused_naming_the_entry_and_key(tmp_path, doc, message):
    path = write(tmp_path, doc, "manifest.json")
    assert refusal(read_af2_manifest, path) == f"{path}: {message}"


# --- the question, options and answer of a training sample ---------------------------------------------------------


def test_an_inline_prompt_gives_its_question_and_options():
    prompt = f"  Which animal?\n(A) a dog. (B) a cat. (C) a cow. {COT_SUFFIX}\n"
    assert split_prompt(prompt) == ("Which animal?", ["a dog", "a cat", "a cow"])
    assert split_prompt("Which?\n(A) x.") == ("Which?", ["x"])


def test_a_model_card_prompt_gives_its_question_and_options_with_or_without_the_full_stop():
    assert split_prompt(f"Which animal? {CHOOSE}\n(A) a dog\n(B) a cat. {COT_SUFFIX}") == ("Which animal?",
                                                                                        ["a dog", "a cat"])
    assert split_prompt(f"Which animal?  {CHOOSE}\n(A)  a dog \n(B) a cat") == ("Which animal?", ["a dog", "a cat"])


def test_a_question_of_several_lines_is_kept_whole_in_either_layout():
    question = "Listen to the clip.\nWhich animal is it?"
    assert split_prompt(f"{question}\n(A) a dog. (B) a cat. {COT_SUFFIX}") == (question, ["a dog", "a cat"])
    assert split_prompt(f"{question} {CHOOSE}\n(A) a dog\n(B) a cat.") == (question, ["a dog", "a cat"])


@pytest.mark.parametrize("prompt", [
    f"Which animal? {CHOOSE}\n(A) a dog\n(C) a cat.",
    f"Which animal? {CHOOSE}\n(B) a dog\n(C) a cat.",
    f"Which animal? {CHOOSE}\n(A) a dog\nor something else",
    "Which animal?\n(A) a dog. (C) a cat.",
    "Which animal?\n(B) a dog. (C) a cat.",
    "Which animal? (A) a dog. (B) a cat.",
    "Describe the sound.",
])
def test_a_prompt_without_options_in_letter_order_is_a_question_alone(prompt):
    assert split_prompt(f"{prompt} {COT_SUFFIX}") == (prompt, None)


def test_an_answer_is_the_last_conclusion_or_the_whole_target_and_a_letter_names_its_option():
    choices = ["a dog", "a cat"]
    target = "<SUMMARY> s </SUMMARY>\n<CONCLUSION> (A) a bird </CONCLUSION> <CONCLUSION>  (B) the cat </CONCLUSION>"
    assert answer_of(target, choices) == "a cat"
    assert answer_of("  (A)\nit barks  ", choices) == "a dog"
    assert answer_of("(B)", choices) == "a cat"
    assert answer_of("<CONCLUSION> A dog. </CONCLUSION>", choices) == "A dog."
    assert answer_of("  A dog.\n", None) == "A dog."


@pytest.mark.parametrize("target, choices", [
    ("(C) a cow", ["a dog", "a cat"]),
    ("(B) a cat", None),
    ("(B) a cat", []),
    ("B) a cat", ["a dog", "a cat"]),
])
def test_a_letter_without_a_matching_option_is_the_answer_as_written(target, choices):
    assert answer_of(f"  {target} ", choices) == target
