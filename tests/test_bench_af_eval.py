"""AF-Reasoning-Eval: loader, native prompts, the documented answer rule and its diagnostics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from afcot_benchmarks.af_eval import AfEvalConfig, AfReasoningEval, parse_options
from afcot_benchmarks.scoring import score

from afcot_core import cli
from afcot_core.errors import BadInput
from afcot_core.template import COT_SUFFIX

AF_DIR = Path(__file__).parent / "fixtures" / "bench" / "af_eval"


@pytest.fixture
def bench() -> AfReasoningEval:
    return AfReasoningEval(AfEvalConfig(data_dir=str(AF_DIR), subsets=["AQA-MCQ", "AQA-Yes/No"]))


@pytest.fixture
def harbour(bench):
    return bench.load().items[0]  # "Where is the recording made?" (A) airport (B) harbour ...


def correct(bench, item, output: str) -> bool:
    return bench.judge(item, bench.extract(item, output)).correct


def test_loader_parses_native_prompts_and_gold(bench, harbour):
    items = bench.load().items
    assert [it.id for it in items] == ["AQA-MCQ/0", "AQA-MCQ/1", "AQA-MCQ/2", "AQA-Yes/No/0", "AQA-Yes/No/1"]
    assert harbour.question == "Where is the recording made?"
    assert harbour.choices == ("airport", "harbour", "library", "forest")
    assert (harbour.answer, harbour.answer_index) == ("harbour", 1)
    assert items[3].choices == ("yes", "no") and items[3].groups == {"subset": "AQA-Yes/No", "task": "AQA"}


def test_prompt_is_byte_exact_with_cot_and_drops_the_suffix_without(bench, harbour):
    native = json.loads((AF_DIR / "AQA_MCQ.json").read_text())["data"]["0"]["prompt"]
    assert bench.prompt(harbour, cot=True) == native
    assert bench.prompt(harbour, cot=False) == native.removesuffix(" " + COT_SUFFIX)


@pytest.mark.parametrize(("output", "expected"), [
    ("(B) harbour", True),
    ("<SUMMARY> s </SUMMARY><CONCLUSION> (b) harbour </CONCLUSION>", True),
    ("<reasoning> boats </reasoning>\n<conclusion> harbour", True),  # unclosed conclusion
    ("Harbour.", True),
    ("  HARBOUR  ", True),
    ("b", True),
    ("B.", True),
    ("b) the harbour", True),
    ("(A) harbour", False),  # a leading letter decides
    ("harbour or library", False),
    ("the harbour, by the water", True),  # matcher fallback: no wrong-option token
    ("", False),
    ("<CONCLUSION> (c) library </CONCLUSION> later <CONCLUSION> (b) harbour </CONCLUSION>", True),
    ("<CONCLUSION> (b) harbour </CONCLUSION> later <CONCLUSION> (c) library </CONCLUSION>", False),
    ("<CONCLUSION></CONCLUSION>", False),
])
def test_answer_rule(bench, harbour, output, expected):
    assert correct(bench, harbour, output) is expected


def test_yes_no_and_letter_text_diagnostics(bench):
    yes_item, no_item = bench.load().items[3:]
    assert correct(bench, yes_item, "<CONCLUSION> Yes, many people are there. </CONCLUSION>")
    assert not correct(bench, yes_item, "no")
    assert correct(bench, no_item, "(b) no")
    verdict = bench.judge(no_item, "(a) no")
    assert verdict.diagnostics == {"letter-only": False, "text-only": True} and not verdict.correct


def test_classification_hard_negatives():
    bench = AfReasoningEval(AfEvalConfig(data_dir=str(AF_DIR), subsets=["Classification-full"]))
    guitar = bench.load().items[0]  # gold (C) electric guitar among bass / acoustic guitar
    assert correct(bench, guitar, "<CONCLUSION> electric guitar </CONCLUSION>")
    assert not correct(bench, guitar, "<CONCLUSION> guitar </CONCLUSION>")
    assert not correct(bench, guitar, "<CONCLUSION> an electric or acoustic guitar </CONCLUSION>")


def test_subset_and_task_breakdowns_with_missing_predictions():
    bench = AfReasoningEval(AfEvalConfig(data_dir=str(AF_DIR)))  # default: MCQ, Yes/No, Classification-mini
    items = bench.load().items
    outputs = {"AQA-MCQ/0": "(B) harbour", "AQA-MCQ/1": "(b) hail", "AQA-Yes/No/0": "yes",
               "AQA-Yes/No/1": "", "Classification-mini/0": "electric guitar", "Classification-mini/1": None}
    report = score(bench, [(it, outputs.get(it.id)) for it in items])
    doc = report.to_json()
    assert doc["overall"] == {"correct": 3, "total": 7, "accuracy": 3 / 7, "missing": 2}
    assert list(doc["subset"]) == ["AQA-MCQ", "AQA-Yes/No", "Classification-mini"]
    assert doc["task"]["AQA"]["total"] == 5 and doc["task"]["Classification"]["correct"] == 1
    assert doc["diagnostics"]["letter-only"]["correct"] == 1 and doc["diagnostics"]["text-only"]["correct"] == 3


def test_bench_score_reads_the_manifest_with_predictions(tmp_path, capsys):
    doc = json.loads((AF_DIR / "AQA_Yes_No.json").read_text())
    doc["data"]["0"]["prediction"] = "<REASONING> a crowd </REASONING><CONCLUSION> (A) yes </CONCLUSION>"
    path = tmp_path / "AQA_Yes_No.predictions.json"
    path.write_text(json.dumps(doc))
    out = tmp_path / "s.json"
    assert cli.main(["bench", "score", "af-reasoning-eval", str(path), "--json", str(out)]) == 0
    captured = capsys.readouterr()
    assert "1 of 2 items have no prediction" in captured.err
    scores = json.loads(out.read_text())
    assert scores["overall"]["correct"] == 1 and scores["subset"]["AQA-Yes/No"]["missing"] == 1


def test_export_writes_one_official_file_per_subset_that_scores_the_same(bench, tmp_path, capsys):
    items = bench.load().items
    outputs = ["<CONCLUSION> (b) harbour </CONCLUSION>", "(c) leaves", None, "yes", "no"]
    files = bench.export(list(zip(items, outputs, strict=True)))
    assert sorted(files) == ["AQA_MCQ.predictions.json", "AQA_Yes_No.predictions.json"]
    correct = 0
    for name, text in files.items():
        (tmp_path / name).write_text(text)
        assert json.loads(text)["flamingo_task"].startswith("AF-Reasoning-Eval-AQA")
        out = tmp_path / f"{name}.scores.json"
        assert cli.main(["bench", "score", "af-reasoning-eval", str(tmp_path / name), "--json", str(out)]) == 0
        correct += json.loads(out.read_text())["overall"]["correct"]
    assert correct == score(bench, list(zip(items, outputs, strict=True))).overall.correct == 3


def test_missing_audio_is_reported_not_raised(tmp_path):
    folder = tmp_path / "Clotho-AQA" / "audio_files"
    folder.mkdir(parents=True)
    (folder / "harbour walk.wav").write_bytes(b"RIFF")
    loaded = AfReasoningEval(AfEvalConfig(data_dir=str(AF_DIR), subsets=["AQA-MCQ"],
                                          audio_root=str(tmp_path))).load()
    assert loaded.missing_audio == ["AQA-MCQ/1"]
    assert loaded.items[1].audio is None and loaded.items[1].audio_path.endswith("rain on roof.wav")


def test_config_and_file_errors(tmp_path):
    with pytest.raises(ValueError, match="did you mean 'AQA-MCQ'"):
        AfEvalConfig(subsets=["AQA_MCQ"])
    doc = json.loads((AF_DIR / "AQA_MCQ.json").read_text())
    doc["data"]["1"]["output"] = "(D) hail"
    (tmp_path / "AQA_MCQ.json").write_text(json.dumps(doc))
    with pytest.raises(BadInput, match=r"data\.1\.output"):
        AfReasoningEval(AfEvalConfig(data_dir=str(tmp_path), subsets=["AQA-MCQ"])).load()
    with pytest.raises(BadInput, match="prompt"):
        parse_options("no options here", "x")
