"""Evaluation in the layout students are trained on; one option-letter rule; diagnostics; checkpoint-keyed results."""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest
import structlog
from afcot_benchmarks.af_eval import AfEvalConfig, AfReasoningEval
from afcot_benchmarks.mmau import Mmau, MmauConfig
from afcot_benchmarks.scoring import score
from afcot_benchmarks.stage import EvaluateStage

from afcot_core import plugins as loader
from afcot_core.hookspecs import hookimpl
from afcot_core.progress import Bar
from afcot_core.teacher import Batching, Request, Teacher
from afcot_core.template import OPTION_LETTERS

FIXTURES = Path(__file__).parent / "fixtures" / "bench"
SUFFIX = "Output the answer with <SUMMARY>, <CAPTION>, <REASONING>, and <CONCLUSION> tags."
PROMPTS: list[str] = []


class LetterConfig(msgspec.Struct, forbid_unknown_fields=True):
    model: str = ""
    answers: dict[str, str] = msgspec.field(default_factory=dict)


class Letter(Teacher):
    """Answers with the letter and text of the option named in ``answers`` (question → option text)."""

    role = "alm"
    model = "letter"
    offload = False

    def __init__(self, config: LetterConfig) -> None:
        super().__init__(Batching(max_batch=8, max_wait_ms=2))
        self.answers = config.answers

    def generate(self, requests: list[Request]) -> list[str]:
        PROMPTS.extend(r.prompt for r in requests)
        out = []
        for r in requests:
            question, options = r.prompt.split("\n")[0], r.prompt.split("\n")[1]
            want = self.answers.get(question, "")
            letter = next((OPTION_LETTERS[i] for i in range(26) if f"({OPTION_LETTERS[i]}) {want}." in options), "Z")
            out.append(f"<SUMMARY> s </SUMMARY> <CONCLUSION> ({letter}) {want} </CONCLUSION>")
        return out


class LetterPlugin:
    @hookimpl
    def register_teacher_alms(self, register):
        register("letter", Letter, LetterConfig, "test teacher")


@pytest.fixture(scope="module")
def plugins():
    return loader.load(extra={"letter": LetterPlugin()})


@pytest.fixture
def mmau_file(tmp_path):
    """The MMAU fixture plus one item with 8 choices, every clip present."""
    items = json.loads((FIXTURES / "mmau_mini.json").read_text())
    items.append({**items[0], "id": "mmau-fx-09", "audio_id": "./test-mini-audios/mmau-fx-09.wav",
                  "question": "Which animal is heard?", "answer": "owl",
                  "choices": ["dog", "cat", "cow", "horse", "sheep", "goat", "duck", "owl"]})
    (tmp_path / "test-mini-audios").mkdir()
    for item in items:
        (tmp_path / item["audio_id"]).write_bytes(b"RIFF")
    (tmp_path / "mmau.json").write_text(json.dumps(items))
    return tmp_path / "mmau.json"


def evaluate(plugins, out, bench, model, **settings):
    table = {"model": {"use": "letter", **model}, "concurrency": 8, **settings, "benchmarks": [bench]}
    section = EvaluateStage().parse(table, plugins)
    return section.run_into(out, structlog.get_logger(), lambda name, total: Bar(name, total, False))


def test_mmau_in_the_trained_layout_with_eight_choices(plugins, mmau_file, tmp_path):
    PROMPTS.clear()
    items = json.loads(mmau_file.read_text())
    answers = {it["question"]: it["answer"] for it in items}
    result = evaluate(plugins, tmp_path / "eval", {"use": "mmau", "file": str(mmau_file)}, {"answers": answers},
                      format="trained")["mmau"]
    assert result["correct"] == result["total"] == 9
    eight = next(p for p in PROMPTS if p.startswith("Which animal"))
    assert eight == ("Which animal is heard?\n(A) dog. (B) cat. (C) cow. (D) horse. (E) sheep. (F) goat. (G) duck. "
                     f"(H) owl. {SUFFIX}")
    official = json.loads((tmp_path / "eval" / "mmau" / "mmau-predictions.json").read_text())
    assert official[-1]["model_output"] == "owl"  # the official file holds the option text, for its string_match
    lettered = Mmau(MmauConfig(file=str(mmau_file), lettered=True))
    item = lettered.load().items[-1]
    assert "(H) owl." in lettered.prompt(item, cot=False)


def af_eval():
    bench = AfReasoningEval(AfEvalConfig(data_dir=str(FIXTURES / "af_eval"), subsets=["AQA-MCQ"]))
    return bench, bench.load().items


@pytest.mark.parametrize("conclusion", ["({letter}) {text}", "Answer: ({letter}) {text}", "{letter}. {text}",
                                        "the answer is ({letter}) {text}.", "{letter}"])
def test_one_rule_for_an_option_letter_anywhere_in_the_conclusion(conclusion):
    bench, items = af_eval()
    item = items[0]
    wrong = (item.answer_index + 1) % len(item.choices)
    for index, right in ((item.answer_index, True), (wrong, False)):
        text = conclusion.format(letter=OPTION_LETTERS[index], text=item.answer)
        verdict = bench.judge(item, bench.extract(item, f"<CONCLUSION> {text} </CONCLUSION>"))
        assert verdict.correct is right, text
    assert bench.judge(item, f"({OPTION_LETTERS[wrong]}) or ({OPTION_LETTERS[item.answer_index]})").correct is False


def test_diagnostics_cover_every_item_and_one_subset_reports_only_itself(tmp_path):
    bench, items = af_eval()
    pairs = [(it, None if n == 0 else f"<CONCLUSION> {it.answer} </CONCLUSION>") for n, it in enumerate(items)]
    doc = score(bench, pairs).to_json()
    assert doc["overall"]["total"] == len(items) > 1
    assert all(d["total"] == len(items) and d["missing"] == 1 for d in doc["diagnostics"].values())
    predictions = json.loads((FIXTURES / "af_eval" / "AQA_Yes_No.json").read_text())
    for entry in predictions["data"].values():
        entry["prediction"] = entry["output"]
    (tmp_path / "yes_no.json").write_text(json.dumps(predictions))
    fresh = AfReasoningEval(AfEvalConfig(data_dir=str(FIXTURES / "af_eval")))
    doc = score(fresh, fresh.read_predictions(tmp_path / "yes_no.json")).to_json()
    assert list(doc["subset"]) == ["AQA-Yes/No"] and doc["overall"]["accuracy"] == 1.0


def test_a_new_checkpoint_is_never_scored_with_old_predictions(plugins, tmp_path):
    model = tmp_path / "final"
    model.mkdir()
    bench = {"use": "embedded-eval", "items": 4}
    (model / "checkpoint.json").write_text(json.dumps({"digest": "a" * 64}))
    evaluate(plugins, tmp_path / "eval", bench, {"model": str(model)})
    out = tmp_path / "eval" / "embedded-eval"
    first = out.joinpath("predictions.jsonl").read_text()
    PROMPTS.clear()
    evaluate(plugins, tmp_path / "eval", bench, {"model": str(model)})
    assert PROMPTS == []  # same checkpoint: the predictions are reused
    (model / "checkpoint.json").write_text(json.dumps({"digest": "b" * 64}))
    evaluate(plugins, tmp_path / "eval", bench, {"model": str(model)})
    assert len(PROMPTS) > 0  # a new checkpoint is asked again
    assert (out / "previous" / ("a" * 12) / "predictions.jsonl").read_text() == first
    assert json.loads((out / "run.json").read_text())["checkpoint"] == "b" * 64
