"""Benchmark file rules: record readers, error messages naming item and key, option letters, prompts,
AF-Reasoning-Eval's answer rule and official files, embedded-eval items, and the official prediction formats."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import soundfile as sf
from afcot_benchmarks.af_eval import AfEvalConfig, AfReasoningEval, normalise, parse_options
from afcot_benchmarks.common import bare_letters_ok, lettered_answer, option_prompt, read_records
from afcot_benchmarks.embedded_eval import EmbeddedEval, EmbeddedEvalConfig, eval_item
from afcot_benchmarks.matching import Matcher
from afcot_benchmarks.mmar import Mmar, MmarConfig
from afcot_benchmarks.mmar import preflight as mmar_preflight
from afcot_benchmarks.mmau import TASKS, Mmau, MmauConfig
from afcot_benchmarks.mmau import preflight as mmau_preflight
from afcot_benchmarks.protocol import EvalItem, with_cot
from afcot_benchmarks.scoring import Report, Stats, plot, score, write_reports

from afcot_core.errors import BadInput
from afcot_core.records import AudioRef, Item
from afcot_core.template import COT_SUFFIX

FIXTURES = Path(__file__).parent / "fixtures" / "bench"


def mmau_record(**change) -> dict:
    record = {"id": "m1", "audio_id": "./a/m1.wav", "question": "Who is speaking?",
              "choices": ["Man", "Woman", "Child"], "answer": "Child", "task": "speech", "category": "Reasoning",
              "sub-category": "Speaker Identification", "difficulty": "easy"}
    return {k: v for k, v in {**record, **change}.items() if v is not None}


def mmar_record(**change) -> dict:
    record = {"id": "r1", "audio_path": "./audio/r1.wav", "question": "Which sport can be heard?",
              "choices": ["Tennis", "Golf"], "answer": "Golf", "modality": "sound", "category": "Perception Layer",
              "sub-category": "Environmental Perception"}
    return {k: v for k, v in {**record, **change}.items() if v is not None}


def write_json(path: Path, doc) -> Path:
    path.write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    return path


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def refusal(call) -> str:
    with pytest.raises(BadInput) as info:
        call()
    return str(info.value)


# --- reading official files ---------------------------------------------------------------------------------------

def test_a_missing_jsonl_file_is_refused_naming_it(tmp_path):
    path = tmp_path / "none.jsonl"
    assert refusal(lambda: read_records(path)) == f"{path}: file not found"


def test_invalid_json_lines_are_refused_naming_the_line_counting_blank_lines(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"id": "a"}\n\n{"id": \n', encoding="utf-8")
    assert refusal(lambda: read_records(path)).startswith(f"{path}:3: not valid JSON: ")


def test_a_json_file_that_is_not_a_list_of_items_is_refused_naming_it(tmp_path):
    path = write_json(tmp_path / "m.json", {"id": "a"})
    assert refusal(lambda: read_records(path)) == f"{path}: expected a JSON list of items, got dict"


def test_a_jsonl_line_that_is_not_an_object_is_refused_naming_the_entry(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"id": "a"}\n[1]\n', encoding="utf-8")
    assert refusal(lambda: read_records(path)) == f"{path}: entry 1: expected an object, got list"


@pytest.mark.parametrize("key", ["task", "difficulty", "sub-category", "answer", "audio_id", "id", "question"])
def test_an_mmau_record_without_a_key_is_refused_naming_item_and_key(tmp_path, key):
    path = write_json(tmp_path / "mmau.json", [mmau_record(), mmau_record(**{"id": "m2", key: None})])
    assert refusal(Mmau(MmauConfig(file=str(path))).load) == f"{path}: item 1: missing key '{key}'"


@pytest.mark.parametrize(("change", "message"), [
    ({"choices": ["Man", 2]}, "choices: expected a list of strings"),
    ({"choices": "Man, Woman"}, "choices: a string that is not a JSON list"),
    ({"task": "noise"}, "task: unknown value 'noise'; expected one of sound, music, speech"),
    ({"category": 3}, "category: expected a string or a list of strings"),
])
def test_an_mmau_record_with_a_bad_value_is_refused_naming_item_and_key(tmp_path, change, message):
    path = write_json(tmp_path / "mmau.json", [mmau_record(**change)])
    assert refusal(Mmau(MmauConfig(file=str(path))).load) == f"{path}: item 0.{message}"


def test_an_mmau_prediction_that_is_not_a_string_is_refused_naming_item_and_key(tmp_path):
    path = write_json(tmp_path / "p.json", [mmau_record(model_output=5)])
    assert refusal(lambda: Mmau(MmauConfig()).read_predictions(path)) == \
        f"{path}: item 0.model_output: expected a string, got int"


def test_mmau_items_carry_the_gold_index_and_no_audio_path_when_read_from_predictions(tmp_path):
    path = write_json(tmp_path / "p.json", [mmau_record(model_output="Child"),
                                            mmau_record(id="m2", answer="Dog", model_output="Dog")])
    (child, pred), (dog, _) = Mmau(MmauConfig()).read_predictions(path)
    assert (child.answer_index, dog.answer_index) == (2, None)
    assert (child.audio, child.audio_path, pred) == (None, "", "Child")


def test_mmau_category_is_empty_when_absent_and_a_list_is_joined(tmp_path):
    path = write_json(tmp_path / "p.json", [mmau_record(category=None),
                                            mmau_record(id="m2", category=["Reasoning", "Information Extraction"]),
                                            mmau_record(id="m3", category=["Reasoning"])])
    groups = [item.groups["category"] for item, _ in Mmau(MmauConfig()).read_predictions(path)]
    assert groups == ["", "Reasoning + Information Extraction", "Reasoning"]


def test_mmau_reports_every_task_in_the_official_order_even_when_unseen(tmp_path):
    path = write_json(tmp_path / "p.json", [mmau_record(model_output="Child"),
                                            mmau_record(id="m2", task="sound", model_output="Man")])
    bench = Mmau(MmauConfig())
    report = score(bench, bench.read_predictions(path), extract=False)
    assert tuple(report.breakdowns["task"]) == TASKS == ("sound", "music", "speech")
    assert [s.total for s in report.breakdowns["task"].values()] == [1, 0, 1]


def test_mmau_audio_is_looked_up_under_the_configured_audio_root(tmp_path):
    path = write_json(tmp_path / "mmau.json", [mmau_record()])
    config = MmauConfig(file=str(path), audio_root=str(tmp_path / "clips"))
    assert config.audio_dir() == tmp_path / "clips"
    (item,) = Mmau(config).load().items
    assert item.audio_path == str(tmp_path / "clips" / "a" / "m1.wav")


def test_an_mmau_audio_file_that_exists_is_referenced_at_its_path(tmp_path):
    clip = tmp_path / "a" / "m1.wav"
    clip.parent.mkdir()
    sf.write(clip, [0.0] * 160, 16000)
    path = write_json(tmp_path / "mmau.json", [mmau_record()])
    loaded = Mmau(MmauConfig(file=str(path))).load()
    (item,) = loaded.items
    assert (item.audio_path, item.audio.path, loaded.missing_audio) == (str(clip), str(clip), [])


def test_an_mmau_field_of_the_wrong_type_is_refused_naming_item_key_and_types(tmp_path):
    path = write_json(tmp_path / "mmau.json", [mmau_record(question=5)])
    assert refusal(Mmau(MmauConfig(file=str(path))).load) == f"{path}: item 0.question: expected str, got int"


def test_an_mmar_file_setting_left_empty_names_the_data_dir_itself(tmp_path):
    assert MmarConfig(data_dir=str(tmp_path), file="").path() == tmp_path
    assert mmar_preflight(MmarConfig(data_dir=str(tmp_path), file="")) == \
        [f"MMAR file not found: {tmp_path} (set data_dir or file)"]


def test_mmau_preflight_names_only_what_is_missing(tmp_path):
    path = write_json(tmp_path / "mmau.json", [mmau_record()])
    assert mmau_preflight(MmauConfig(file=str(path))) == []
    missing = tmp_path / "clips"
    assert mmau_preflight(MmauConfig(file=str(path), audio_root=str(missing))) == \
        [f"MMAU audio folder not found: {missing} (set audio_root)"]
    gone = tmp_path / "gone.json"
    assert mmau_preflight(MmauConfig(file=str(gone), audio_root=str(tmp_path))) == \
        [f"MMAU file not found: {gone} (set data_dir, subset or file)"]


def test_mmau_export_is_an_indented_json_list_keeping_non_ascii_text():
    item = Mmau.parse_item(mmau_record(question="Qui parle au café ?"), "x", None)
    text = Mmau(MmauConfig()).export([(item, "Child"), (item, None)])["mmau-predictions.json"]
    rows = [{**item.record, "model_output": "Child"}, {**item.record, "model_output": ""}]
    assert text == json.dumps(rows, indent=2, ensure_ascii=False) + "\n"
    assert "au café ?" in text and text.startswith('[\n  {\n    "id": "m1",')


@pytest.mark.parametrize(("key", "message"), [
    ("modality", "missing key 'modality'"),
    ("sub-category", "missing key 'sub-category'"),
    ("id", "missing key 'id'"),
])
def test_an_mmar_record_without_a_key_is_refused_naming_item_and_key(tmp_path, key, message):
    path = write_jsonl(tmp_path / "MMAR-meta.jsonl", [mmar_record(**{key: None})])
    assert refusal(Mmar(MmarConfig(data_dir=str(tmp_path))).load) == f"{path}: item 0: {message}"


@pytest.mark.parametrize(("category", "message"), [
    (None, "expected a string (or a one-element list)"),
    (["Signal Layer", "Semantic Layer"], "expected a string (or a one-element list)"),
    ("Top Layer", "unknown value 'Top Layer'; expected one of Signal Layer, Perception Layer, Semantic Layer, "
                  "Cultural Layer"),
])
def test_an_mmar_category_that_is_not_one_layer_is_refused_naming_the_item(tmp_path, category, message):
    path = write_jsonl(tmp_path / "p.jsonl", [mmar_record(category=category)])
    assert refusal(lambda: Mmar(MmarConfig()).read_predictions(path)) == f"{path}: item 0.category: {message}"


def test_mmar_export_is_json_lines_keeping_non_ascii_text():
    item = Mmar.parse_item(mmar_record(question="哪种运动?"), "x", None)
    text = Mmar(MmarConfig()).export([(item, "Golf")])["mmar-predictions.jsonl"]
    assert text == json.dumps({**item.record, "answer_prediction": "Golf"}, ensure_ascii=False) + "\n"
    assert "哪种运动?" in text


# --- option letters and prompts ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("choices", "ok"), [
    (["dog", "cat"], True),
    (["ox", "cat"], True),
    (["1", "2"], True),
    (["a", "dog"], False),
    ([" B ", "dog"], False),
])
def test_bare_letters_are_option_letters_unless_a_choice_is_a_single_letter(choices, ok):
    assert bare_letters_ok(choices) is ok


def test_a_bare_letter_selects_its_option_unless_a_choice_is_itself_a_letter():
    assert lettered_answer("b", ["dog", "cat"]) == "cat"
    assert lettered_answer("b", ["a", "c", "dog"]) == "b"
    assert lettered_answer("(b)", ["a", "c", "dog"]) == "c"


def test_option_prompts_carry_no_cot_suffix_of_their_own():
    assert option_prompt("Who?", ["Man", "Woman"], lettered=True) == "Who?\n(A) Man. (B) Woman."
    assert option_prompt("Who?", ["Man", "Woman"], lettered=False) == \
        "Who?\nSelect one option from the provided choices:\nMan\nWoman"


def test_with_cot_puts_the_suffix_on_its_own_line_or_removes_it():
    native = f"Who?\n(A) Man. (B) Woman. {COT_SUFFIX}"
    assert with_cot(native, cot=False) == "Who?\n(A) Man. (B) Woman."
    assert with_cot(native, cot=True) == f"Who?\n(A) Man. (B) Woman.\n{COT_SUFFIX}"


def test_trained_prompts_default_to_the_inline_layout_and_honour_cot_in_each_layout(tmp_path):
    item = Mmau.parse_item(mmau_record(choices=["Man", "Woman"], answer="Man"), "x", None)
    bench = Mmau(MmauConfig())
    assert bench.trained_prompt(item, True) == f"Who is speaking?\n(A) Man. (B) Woman. {COT_SUFFIX}"
    assert bench.trained_prompt(item, False, "model-card") == \
        "Who is speaking? Choose the correct option from the following options:\n(A) Man\n(B) Woman."


def test_a_string_of_choices_is_refused_with_a_message():
    with pytest.raises(TypeError, match=r"^choices must be a sequence of strings, not a string$"):
        Matcher("yes", "yes no")


# --- AF-Reasoning-Eval -------------------------------------------------------------------------------------------

def af_doc(entries: dict[str, dict], task: str = "AF-Reasoning-Eval-AQA-Yes_No") -> dict:
    return {"dataset_path": "Clotho-AQA/audio_files", "flamingo_task": task, "total_num": len(entries),
            "data": entries}


def yes_no(question: str, gold: str, **extra) -> dict:
    return {"name": "a.wav", "prompt": f"{question}\n(A) yes. (B) no. {COT_SUFFIX}", "output": gold, **extra}


def test_normalise_lowercases_and_strips_whitespace_and_trailing_dots():
    assert normalise("  Harbour.. ") == "harbour"
    assert normalise("...Harbour") == "...harbour"


def test_prompt_options_must_be_lettered_in_order():
    with pytest.raises(BadInput, match=r"^x\.prompt: expected"):
        parse_options("Where?\n(A) airport. (C) harbour.", "x")
    assert parse_options("Where?\n(A) airport. (B) harbour.", "x") == ("Where?", ("airport", "harbour"))


def test_a_prompt_line_without_options_is_refused():
    with pytest.raises(BadInput, match=r"^x\.prompt: expected"):
        parse_options("Where?\nno options here", "x")


def test_af_eval_subset_settings_are_checked_with_exact_messages():
    with pytest.raises(ValueError, match=r"^unknown subset 'zzz'; subsets: AQA-MCQ, AQA-Yes/No, Classification-mini, "
                                         r"Classification-full$"):
        AfEvalConfig(subsets=["zzz"])
    with pytest.raises(ValueError, match=r"^unknown subset 'AQA_MCQ' \(did you mean 'AQA-MCQ'\?\); subsets: "):
        AfEvalConfig(subsets=["AQA_MCQ"])
    with pytest.raises(ValueError, match=r"^subsets: name at least one subset$"):
        AfEvalConfig(subsets=[])


TASKS_KNOWN = ("AF-Reasoning-Eval-AQA-MCQ, AF-Reasoning-Eval-AQA-Yes_No, AF-Reasoning-Eval-Classification-mini, "
               "AF-Reasoning-Eval-Classification-full")
BAD_GOLD = "expected '(<letter>) <text>' naming one of the prompt's options"
NO_DATA = ": expected an object with a 'data' object"
YES_NO_PROMPT = f"Q?\n(A) yes. (B) no. {COT_SUFFIX}"


@pytest.mark.parametrize(("doc", "message"), [
    ([], NO_DATA),
    ({"flamingo_task": "AF-Reasoning-Eval-AQA-Yes_No", "dataset_path": "x"}, NO_DATA),
    ({**af_doc({}), "flamingo_task": "AQA"}, f".flamingo_task: unknown task 'AQA'; expected one of {TASKS_KNOWN}"),
    ({"dataset_path": "x", "data": {}}, ": missing key 'flamingo_task'"),
    ({"flamingo_task": "AF-Reasoning-Eval-AQA-Yes_No", "data": {}}, ": missing key 'dataset_path'"),
    (af_doc({"0": "yes"}), ": data.0: expected an object"),
    (af_doc({"0": {"name": "a.wav", "output": "(A) yes"}}), ": data.0: missing key 'prompt'"),
    (af_doc({"0": {"name": "a.wav", "prompt": YES_NO_PROMPT}}), ": data.0: missing key 'output'"),
    (af_doc({"0": {"prompt": YES_NO_PROMPT, "output": "(A) yes"}}), ": data.0: missing key 'name'"),
    (af_doc({"0": yes_no("Q?", "yes")}), f": data.0.output: {BAD_GOLD}"),
    (af_doc({"0": yes_no("Q?", "(C) maybe")}), f": data.0.output: {BAD_GOLD}"),
    (af_doc({"0": yes_no("Q?", "(B) yes")}), f": data.0.output: {BAD_GOLD}"),
])
def test_an_official_af_eval_file_that_breaks_the_format_is_refused_naming_file_and_entry(tmp_path, doc, message):
    path = write_json(tmp_path / "p.json", doc)
    assert refusal(lambda: AfReasoningEval(AfEvalConfig()).read_predictions(path)) == f"{path}{message}"


def test_af_eval_items_read_from_predictions_look_for_no_audio(tmp_path):
    path = write_json(tmp_path / "p.json", af_doc({"0": yes_no("Loud?", "(B) no", prediction="no")}))
    ((item, prediction),) = AfReasoningEval(AfEvalConfig()).read_predictions(path)
    assert (item.audio, item.audio_path, item.answer, item.answer_index, prediction) == (None, "", "no", 1, "no")


def test_af_eval_reports_configured_subsets_in_the_official_order():
    bench = AfReasoningEval(AfEvalConfig(subsets=["Classification-mini", "AQA-MCQ"]))
    assert bench.group_order("subset") == ("AQA-MCQ", "Classification-mini")
    assert bench.group_order("task") == ()


def test_af_eval_a_letter_decides_and_the_text_after_it_is_judged_alone():
    item = EvalItem(id="AQA-MCQ/0", question="What barks?", choices=("dog", "a cat"), answer="dog", answer_index=0,
                    groups={"subset": "AQA-MCQ", "task": "AQA"})
    verdict = AfReasoningEval(AfEvalConfig()).judge(item, "(a) dog")
    assert verdict.correct and verdict.diagnostics == {"letter-only": True, "text-only": True}
    verdict = AfReasoningEval(AfEvalConfig()).judge(item, "(b) dog")
    assert not verdict.correct and verdict.diagnostics == {"letter-only": False, "text-only": True}


def test_af_eval_native_prompt_is_kept_byte_for_byte_by_the_trained_inline_layout(tmp_path):
    prompt = f"Is it loud?\n(A) yes. (B) no.  {COT_SUFFIX}"
    write_json(tmp_path / "AQA_Yes_No.json", af_doc({"0": {"name": "a.wav", "prompt": prompt, "output": "(A) yes"}}))
    bench = AfReasoningEval(AfEvalConfig(data_dir=str(tmp_path), subsets=["AQA-Yes/No"]))
    (item,) = bench.load().items
    assert bench.trained_prompt(item, True) == prompt
    assert bench.trained_prompt(item, True, "inline") == prompt
    assert bench.trained_prompt(item, False, "inline") == "Is it loud?\n(A) yes. (B) no."


def test_af_eval_file_errors_name_the_file_and_entry(tmp_path):
    path = write_json(tmp_path / "AQA_Yes_No.json", af_doc({"0": {"name": "a.wav", "prompt": "no options",
                                                                  "output": "(A) yes"}}))
    bench = AfReasoningEval(AfEvalConfig(data_dir=str(tmp_path), subsets=["AQA-Yes/No"]))
    assert refusal(bench.load).startswith(f"{path}: data.0.prompt: expected")
    assert refusal(lambda: bench.read_predictions(path)).startswith(f"{path}: data.0.prompt: expected")


def test_af_eval_a_prediction_that_is_not_a_string_is_refused_naming_the_item(tmp_path):
    path = write_json(tmp_path / "p.json", af_doc({"0": yes_no("Loud?", "(A) yes", prediction=1)}))
    assert refusal(lambda: AfReasoningEval(AfEvalConfig()).read_predictions(path)) == \
        f"{path}: AQA-Yes/No/0.prediction: expected a string, got int"


def test_af_eval_export_keeps_the_official_file_with_only_the_answered_entries(tmp_path):
    doc = af_doc({"0": yes_no("Is the café busy?", "(A) yes"), "1": yes_no("Is it quiet?", "(B) no")})
    write_json(tmp_path / "AQA_Yes_No.json", doc)
    bench = AfReasoningEval(AfEvalConfig(data_dir=str(tmp_path), subsets=["AQA-Yes/No"]))
    items = bench.load().items
    files = bench.export([(items[0], "(A) yes")])
    expected = {**doc, "data": {"0": {**doc["data"]["0"], "prediction": "(A) yes"}}}
    assert files == {"AQA_Yes_No.predictions.json": json.dumps(expected, indent=2, ensure_ascii=False) + "\n"}
    assert "café" in files["AQA_Yes_No.predictions.json"]
    fresh = AfReasoningEval(AfEvalConfig()).export([(items[1], None)])
    assert json.loads(fresh["AQA_Yes_No.predictions.json"]) == {"data": {"1": {**doc["data"]["1"], "prediction": ""}}}


def test_af_eval_predictions_read_back_export_the_same_official_file(tmp_path):
    doc = af_doc({"0": yes_no("Loud?", "(A) yes", prediction="(A) yes")})
    path = write_json(tmp_path / "p.json", doc)
    bench = AfReasoningEval(AfEvalConfig(subsets=["AQA-MCQ"]))
    pairs = bench.read_predictions(path)
    assert bench.group_order("subset") == ("AQA-Yes/No",)
    assert json.loads(bench.export(pairs)["AQA_Yes_No.predictions.json"]) == doc


# --- embedded-eval -----------------------------------------------------------------------------------------------

def item_of(answer: str, choices: list[str] | None = None, kind: str = "aqa") -> Item:
    return Item(id="e1", audio=AudioRef(path="e1.wav"), question="What is heard?", answer=answer, kind=kind,
                choices=choices)


def test_embedded_items_are_sorted_into_subsets_with_their_gold_index():
    mcq = eval_item(item_of("Cat", ["Dog", "Cat", "Bird"]))
    assert (mcq.choices, mcq.answer, mcq.answer_index, mcq.groups) == (("Dog", "Cat", "Bird"), "Cat", 1,
                                                                       {"subset": "AQA-MCQ"})
    assert mcq.record == {"id": "e1", "question": "What is heard?", "choices": ["Dog", "Cat", "Bird"],
                          "answer": "Cat", "subset": "AQA-MCQ"}
    yes = eval_item(item_of(" Yes "))
    assert (yes.choices, yes.answer, yes.answer_index, yes.groups) == (("yes", "no"), "yes", 0,
                                                                       {"subset": "AQA-Yes/No"})
    named = eval_item(item_of("No", ["Yes", "No"]))
    assert (named.answer, named.answer_index, named.groups) == ("No", 1, {"subset": "AQA-Yes/No"})
    label = eval_item(item_of("dog", ["dog", "cat"], kind="classification"))
    assert (label.answer_index, label.groups) == (0, {"subset": "Classification"})
    assert eval_item(item_of("a dog barking")) is None


def test_embedded_eval_prompt_asks_for_the_tagged_format_with_cot():
    item = eval_item(item_of("yes"))
    bench = EmbeddedEval(EmbeddedEvalConfig())
    assert bench.prompt(item, cot=True) == f"What is heard?\n(A) yes. (B) no. {COT_SUFFIX}"
    assert bench.prompt(item, cot=False) == "What is heard?\n(A) yes. (B) no."


def test_embedded_eval_config_needs_at_least_one_item_and_one_is_enough():
    with pytest.raises(ValueError, match=r"^items must be >= 1$"):
        EmbeddedEvalConfig(items=0)
    loaded = EmbeddedEval(EmbeddedEvalConfig(items=1)).load()
    assert len(loaded.items) <= 1 and loaded.missing_audio == []


def test_embedded_eval_unknown_source_is_refused_naming_the_setting():
    message = refusal(EmbeddedEval(EmbeddedEvalConfig(source="nope")).load)
    assert message.startswith("embedded-eval.source: unknown source 'nope'")


def test_an_embedded_eval_prediction_row_reads_back_whole_and_exports_unchanged(tmp_path):
    row = {"id": "e1", "question": "¿Qué se oye?", "choices": ["yes", "no"], "answer": "yes", "subset": "AQA-Yes/No",
           "prediction": "(A)"}
    path = write_jsonl(tmp_path / "p.jsonl", [row])
    bench = EmbeddedEval(EmbeddedEvalConfig())
    pairs = bench.read_predictions(path)
    assert pairs[0][0].record == row and pairs[0][1] == "(A)"
    assert bench.export(pairs) == {"embedded-eval-predictions.jsonl": json.dumps(row, ensure_ascii=False) + "\n"}


def test_an_embedded_eval_row_with_bad_choices_is_refused_naming_the_item(tmp_path):
    path = write_jsonl(tmp_path / "p.jsonl", [{"id": "e1", "question": "Q?", "choices": "yes", "answer": "yes",
                                               "subset": "AQA-Yes/No"}])
    assert refusal(lambda: EmbeddedEval(EmbeddedEvalConfig()).read_predictions(path)) == \
        f"{path}: item 0.choices: a string that is not a JSON list"


# --- reports -------------------------------------------------------------------------------------------------------

def two_group_report() -> Report:
    return Report("mmau", Stats(3, 4), {"task": {"sound": Stats(2, 2), "Café": Stats(1, 2)},
                                        "split": {"a": Stats(3, 4)}})


def png_size(path: Path) -> tuple[int, int]:
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def test_reports_are_written_into_a_new_nested_folder_with_plots_by_default(tmp_path):
    out = tmp_path / "a" / "b"
    written = write_reports(two_group_report(), out)
    assert written == {"json": out / "report.json", "markdown": out / "report.md",
                       "plots": [out / "plots" / "task.png", out / "plots" / "split.png"]}
    text = (out / "report.json").read_text(encoding="utf-8")
    assert text == json.dumps(two_group_report().to_json(), indent=2, ensure_ascii=False) + "\n"
    assert '"Café"' in text
    assert (out / "report.md").read_text(encoding="utf-8").startswith("# mmau\n")


def test_plots_are_800_pixels_wide_and_grow_with_the_number_of_groups(tmp_path):
    paths = plot(two_group_report(), tmp_path / "x" / "plots")
    assert paths == [tmp_path / "x" / "plots" / "task.png", tmp_path / "x" / "plots" / "split.png"]
    assert [png_size(p) for p in paths] == [(800, 230), (800, 190)]


def test_a_plot_draws_the_first_group_on_top_and_the_overall_line_in_red(tmp_path):
    import matplotlib.image

    path = plot(two_group_report(), tmp_path)[0]
    rgb = matplotlib.image.imread(path)[..., :3]
    blue = abs(rgb - (0x1F / 255, 0x77 / 255, 0xB4 / 255)).max(axis=2) < 0.05
    red = abs(rgb - (0xD6 / 255, 0x27 / 255, 0x28 / 255)).max(axis=2) < 0.05
    rows = [r for r in range(blue.shape[0]) if blue[r].sum() > 20]
    top, bottom = blue[rows[0]].sum(), blue[rows[-1]].sum()
    assert top > 1.8 * bottom  # sound (100 %) above Café (50 %)
    assert red.sum() > 50


def test_the_markdown_report_is_word_for_word_with_its_warnings():
    report = Report("mmau", Stats(3, 4, 1), {"task": {"sound": Stats(1, 2, 1), "music": Stats(2, 2, 0)}},
                    {"letter-only": Stats(2, 4, 0)}, missing_ids=["q4"], skipped_ids=["q5", "q6"])
    assert report.to_markdown() == (
        "# mmau\n\n"
        "## overall\n\n| overall | correct | total | accuracy (%) | missing |\n|---|---:|---:|---:|---:|\n"
        "| all | 3 | 4 | 75.00 | 1 |\n\n"
        "## task\n\n| task | correct | total | accuracy (%) | missing |\n|---|---:|---:|---:|---:|\n"
        "| sound | 1 | 2 | 50.00 | 1 |\n| music | 2 | 2 | 100.00 | 0 |\n\n"
        "## diagnostics\n\n| diagnostics | correct | total | accuracy (%) | missing |\n|---|---:|---:|---:|---:|\n"
        "| letter-only | 2 | 4 | 50.00 | 0 |\n\n"
        "**Warning:** 1 item(s) had no prediction; they count as wrong.\n"
        "**Warning:** 2 item(s) had no prediction and were left out of every denominator (as the official local "
        "scripts do).\n")
    assert Report("mmar", Stats(), {}).to_markdown("MMAR: p.jsonl").startswith("# MMAR: p.jsonl\n\n## overall\n")


def test_the_scores_carry_the_benchmark_s_name_and_each_diagnostic_seen():
    bench = AfReasoningEval(AfEvalConfig(data_dir=str(Path(__file__).parent / "fixtures" / "bench" / "af_eval"),
                                         subsets=["AQA-MCQ"]))
    items = bench.load().items
    report = score(bench, [(items[0], "(b) harbour"), (items[1], None)])
    assert report.benchmark == "af-reasoning-eval"
    assert {k: v.to_dict() for k, v in report.diagnostics.items()} == {
        "letter-only": {"correct": 1, "total": 2, "accuracy": 0.5, "missing": 1},
        "text-only": {"correct": 1, "total": 2, "accuracy": 0.5, "missing": 1}}


@pytest.mark.parametrize(("text", "expected"), [
    ("(b) harbour", (1, "harbour")),
    ("it is (B) the harbour (b)", (1, "it is the harbour")),
    ("(b) harbour, not (z) nowhere", (1, "harbour, not (z) nowhere")),
    ("b) the  harbour ", (1, "the  harbour")),
    ("c.", (2, "")),
    ("(a) or (b)", (None, "(a) or (b)")),
])
def test_the_text_beside_an_option_letter_is_kept_without_that_letter(text, expected):
    from afcot_benchmarks.common import split_letter

    assert split_letter(text, 4, allow_bare=False) == expected


def test_plot_files_are_named_after_their_breakdown_with_unsafe_characters_replaced(tmp_path):
    pytest.importorskip("matplotlib")
    report = Report("mmar", Stats(1, 2), {"sub-category / type": {"a": Stats(1, 2)}, "task_2": {"b": Stats(0, 1)}})
    written = write_reports(report, tmp_path)
    assert sorted(Path(p).name for p in written["plots"]) == ["sub-category___type.png", "task_2.png"]
