"""The benchmarks' own files: embedded-eval's and MMAR's prediction files read back and scored, the preflight
messages that name a missing file or folder, and the trained layouts of AF-Reasoning-Eval's prompts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from afcot_benchmarks.af_eval import AfEvalConfig, AfReasoningEval
from afcot_benchmarks.af_eval import preflight as af_eval_preflight
from afcot_benchmarks.embedded_eval import EmbeddedEval, EmbeddedEvalConfig
from afcot_benchmarks.mmar import Mmar, MmarConfig
from afcot_benchmarks.mmar import preflight as mmar_preflight
from afcot_benchmarks.scoring import score

from afcot_core.api import COT_SUFFIX

from .conftest import run_cli

BENCH = Path(__file__).parent / "fixtures" / "bench"
AF_DIR = BENCH / "af_eval"
MMAR_FILE = BENCH / "mmar_mini.jsonl"


def bench_score(capsys, *args: str) -> tuple[int, str, str]:
    """``afcot bench score ARGS`` in this process: exit code, stdout, stderr."""
    return run_cli(capsys, "bench", "score", *args)


@pytest.fixture(scope="module")
def embedded_items():
    return EmbeddedEval(EmbeddedEvalConfig(items=12)).load().items


def test_an_embedded_eval_prediction_file_reads_back_every_field_and_scores(embedded_items, tmp_path, capsys):
    bench = EmbeddedEval(EmbeddedEvalConfig(items=12))
    answers = [(item, f"({'ABCDEFGH'[item.answer_index]})" if i % 2 == 0 else None)
               for i, item in enumerate(embedded_items)]
    (name, text), = bench.export(answers).items()
    assert name == "embedded-eval-predictions.jsonl"
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")

    again = bench.read_predictions(path)
    assert [(i.id, i.question, i.choices, i.answer, i.answer_index, i.groups) for i, _ in again] == \
        [(i.id, i.question, i.choices, i.answer, i.answer_index, i.groups) for i in embedded_items]
    assert [p for _, p in again] == [p or "" for _, p in answers]
    assert {i.groups["subset"] for i, _ in again} <= {"AQA-MCQ", "AQA-Yes/No", "Classification"}

    code, out, _ = bench_score(capsys, "embedded-eval", str(path), "--json", str(tmp_path / "s.json"))
    assert code == 0, out
    overall = json.loads((tmp_path / "s.json").read_text())["overall"]
    assert overall["total"] == len(embedded_items)
    assert overall["correct"] == len(embedded_items[::2])  # the lettered answers, and none of the empty ones


@pytest.mark.parametrize("key", ["id", "question", "answer", "subset"])
def test_an_embedded_eval_record_without_a_key_is_refused_naming_item_and_key(embedded_items, tmp_path, capsys,
                                                                             key):
    bench = EmbeddedEval(EmbeddedEvalConfig(items=12))
    rows = [json.loads(line) for line in next(iter(bench.export([(i, "") for i in embedded_items]).values()))
            .splitlines()]
    del rows[1][key]
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    code, _, err = bench_score(capsys, "embedded-eval", str(path))
    assert code == 2
    assert err == f"error: {path}: item 1: missing key '{key}'\n"


def test_an_embedded_eval_answer_that_is_not_an_option_has_no_index(embedded_items, tmp_path):
    bench = EmbeddedEval(EmbeddedEvalConfig(items=12))
    row = json.loads(next(iter(bench.export([(embedded_items[0], "x")]).values())))
    path = tmp_path / "p.jsonl"
    path.write_text(json.dumps({**row, "answer": "not an option"}) + "\n", encoding="utf-8")
    (item, prediction), = bench.read_predictions(path)
    assert item.answer_index is None and item.answer == "not an option" and prediction == "x"


def test_an_mmar_prediction_file_round_trips_and_scores_the_same(tmp_path):
    bench = Mmar(MmarConfig())
    pairs = bench.read_predictions(MMAR_FILE)
    answers = [(item, item.answer if i % 3 else None) for i, (item, _) in enumerate(pairs)]
    (name, text), = bench.export(answers).items()
    assert name == "mmar-predictions.jsonl"
    assert text.endswith("\n") and len(text.splitlines()) == len(pairs)
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    again = bench.read_predictions(path)
    assert [p for _, p in again] == [a or "" for _, a in answers]
    assert [json.loads(line)["answer_prediction"] for line in text.splitlines()] == [a or "" for _, a in answers]
    first = score(bench, [(i, a) for i, a in answers], extract=False).overall
    assert score(bench, again, extract=False).overall.to_dict() == {**first.to_dict(), "missing": 0}


def test_mmar_preflight_names_the_missing_file_and_audio_folder(tmp_path):
    assert mmar_preflight(MmarConfig(data_dir=str(MMAR_FILE.parent), file=MMAR_FILE.name)) == []
    missing = tmp_path / "nowhere"
    problems = mmar_preflight(MmarConfig(data_dir=str(missing), file="MMAR-meta.json"))
    assert problems == [f"MMAR file not found: {missing / 'MMAR-meta.json'} (set data_dir or file)",
                        f"MMAR audio folder not found: {missing} (set audio_root)"]
    audio = tmp_path / "audio"
    audio.mkdir()
    assert mmar_preflight(MmarConfig(data_dir=str(missing), file="m.json", audio_root=str(audio))) == \
        [f"MMAR file not found: {missing / 'm.json'} (set data_dir or file)"]


def test_af_eval_preflight_names_each_missing_subset_file_and_the_audio_root(tmp_path):
    problems = af_eval_preflight(AfEvalConfig(data_dir=str(tmp_path), subsets=["AQA-MCQ"],
                                              audio_root=str(tmp_path / "a")))
    assert len(problems) == 2
    assert problems[0].startswith("AF-Reasoning-Eval file not found: " + str(tmp_path))
    assert problems[0].endswith("(set data_dir)")
    assert problems[1] == f"AF-Reasoning-Eval audio root not found: {tmp_path / 'a'} (set audio_root)"


def test_af_eval_trained_prompts_keep_the_native_inline_prompt_and_build_the_model_card_layout():
    bench = AfReasoningEval(AfEvalConfig(data_dir=str(AF_DIR), subsets=["AQA-MCQ"]))
    item = bench.load().items[0]
    assert bench.trained_prompt(item, cot=True) == bench.prompt(item, cot=True)
    assert bench.trained_prompt(item, cot=False) == bench.prompt(item, cot=False)
    card = bench.trained_prompt(item, cot=True, layout="model-card")
    assert card != bench.prompt(item, cot=True) and card.endswith(COT_SUFFIX)
    assert item.question in card and all(c in card for c in item.choices)
    assert not bench.trained_prompt(item, cot=False, layout="model-card").endswith(COT_SUFFIX)
    with pytest.raises(ValueError, match="unknown prompt layout 'grid'"):
        bench.trained_prompt(item, cot=True, layout="grid")
