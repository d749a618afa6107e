"""The AF-Reasoning-Eval file format: key order, header, malformed documents and entries, the written text."""

from __future__ import annotations

import json

import pytest
from afcot_negatives.evalfile import McqEntry, parse_entry, read_eval_file, write_eval_file

from afcot_core.errors import BadInput

SUFFIX = "Output the answer with <SUMMARY>, <CAPTION>, <REASONING>, and <CONCLUSION> tags."


def _entry(options: str = "(A) a. (B) b.", output: str = "(B) b", name: str = "1.wav") -> dict[str, str]:
    return {"name": name, "prompt": f"Q\n{options} {SUFFIX}", "output": output}


def test_entries_come_in_numeric_key_order_then_the_other_keys_by_name(tmp_path):
    path = tmp_path / "eval.json"
    data = {k: _entry(name=f"{k}.wav") for k in ("10", "b", "2", "a", "0")}
    path.write_text(json.dumps({"dataset_path": "d", "flamingo_task": "t", "total_num": 5, "data": data}),
                    encoding="utf-8")
    header, entries = read_eval_file(path)
    assert [e.key for e in entries] == ["0", "2", "10", "a", "b"]
    assert [e.name for e in entries] == ["0.wav", "2.wav", "10.wav", "a.wav", "b.wav"]
    assert header == {"dataset_path": "d", "flamingo_task": "t", "total_num": 5}


@pytest.mark.parametrize("doc", [[{"data": {}}], {"dataset_path": "d"}, {"data": ["x"]}])
def test_a_document_without_a_data_object_is_refused(tmp_path, doc):
    path = tmp_path / "eval.json"
    path.write_text(json.dumps(doc), encoding="utf-8")
    with pytest.raises(BadInput, match=r"eval\.json: expected an object with a 'data' object$"):
        read_eval_file(path)


@pytest.mark.parametrize("entry", [["Q\n(A) a.", "(A) a"], {"name": "1.wav", "prompt": "Q\n(A) a."},
                                   {"name": 1, "prompt": "Q\n(A) a.", "output": "(A) a"}])
def test_an_entry_that_is_not_an_object_of_three_strings_is_refused(entry):
    with pytest.raises(BadInput, match=r"^f: data\.0: expected an object with string 'name', 'prompt' and 'output'$"):
        parse_entry("0", entry, "f: data.0")


def test_a_prompt_without_a_line_break_is_refused():
    with pytest.raises(BadInput, match=r"^w\.prompt: no line break between the question and the options$"):
        parse_entry("0", {"name": "1.wav", "prompt": "Q (A) a. (B) b.", "output": "(A) a"}, "w")


def test_options_may_run_over_several_lines_below_the_question():
    entry = {"name": "1.wav", "prompt": f"Which sound?\n(A) a dog.\n(B) a cat.\n{SUFFIX}", "output": "(B) a cat"}
    assert parse_entry("7", entry, "w") == McqEntry("7", "1.wav", "Which sound?", ("a dog", "a cat"), 1)


def test_text_between_the_question_and_the_first_option_is_refused():
    with pytest.raises(BadInput, match=r"^w\.prompt: options are not"):
        parse_entry("0", _entry(options="Pick one: (A) a. (B) b."), "w")


def test_a_bad_output_is_refused_with_the_letters_or_the_option_it_should_name():
    with pytest.raises(BadInput, match=r"^w\.output: expected '\(X\) option' with X one of A, B, C$"):
        parse_entry("0", _entry(options="(A) a. (B) b. (C) c.", output="(D) d"), "w")
    with pytest.raises(BadInput, match=r"^w\.output: 'a' is not option \(B\) 'b'$"):
        parse_entry("0", _entry(output="(B) a"), "w")


def test_the_written_file_is_indented_utf8_json_ending_in_a_newline(tmp_path):
    path = tmp_path / "out.json"
    write_eval_file(path, [McqEntry("7", "é.wav", "Quel son ?", ("café", "thé"), 1)], "d", "t")
    assert path.read_bytes().decode("utf-8") == (
        '{\n'
        '  "dataset_path": "d",\n'
        '  "flamingo_task": "t",\n'
        '  "total_num": 1,\n'
        '  "data": {\n'
        '    "0": {\n'
        '      "name": "é.wav",\n'
        f'      "prompt": "Quel son ?\\n(A) café. (B) thé. {SUFFIX}",\n'
        '      "output": "(B) thé"\n'
        '    }\n'
        '  }\n'
        '}\n')
    assert read_eval_file(path)[1] == [McqEntry("0", "é.wav", "Quel son ?", ("café", "thé"), 1)]
