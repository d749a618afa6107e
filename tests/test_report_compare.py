"""The comparison of recipe variants (``afcot_report.compare``) read from small hand-made run folders, and the text
report of ``afcot audit score`` (``afcot_report.audit.report``)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import msgspec
import pytest
from afcot_report import compare
from afcot_report.audit import CHECKED, FLAGGED, report, score

from afcot_core.api import BadInput
from afcot_core.records import Record, TeacherCall

from .student_data import tone_record, write_shards


def _sink_write(folder: Path, records: list[Record]) -> None:
    from afcot_core.plugins import default

    registration = default().registry("sink").get("webdataset", where="test")
    folder.mkdir(parents=True, exist_ok=True)
    registration.build(registration.config()).write(folder / "shard-000000.tar", records)


def _calls(n: int, chars: int) -> list[TeacherCall]:
    """``n`` teacher calls of ``chars`` characters each (prompt and reply together)."""
    half = "x" * (chars // 2)
    return [TeacherCall(role="alm" if i % 2 else "llm", model="m", prompt=half, reply=half) for i in range(n)]


def _run(tmp_path: Path, lock: str = "[recipe.train]\ndata = \"x\"\n", name: str = "run") -> Path:
    run = tmp_path / name
    run.mkdir(parents=True)
    (run / "recipe.lock.toml").write_text(lock)
    return run


def _jsonl(path: Path, rows: list) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows))


# --- run folders --------------------------------------------------------------------------------------------------


def test_a_folder_without_a_lock_is_refused_naming_the_folder(tmp_path):
    with pytest.raises(BadInput) as exc:
        compare.summary("x", tmp_path)
    assert str(tmp_path) in str(exc.value) and "not a run folder (no recipe.lock.toml)" in str(exc.value)


def test_a_lock_that_is_not_toml_is_refused_naming_the_file(tmp_path):
    run = _run(tmp_path, lock="[recipe\n")
    with pytest.raises(BadInput) as exc:
        compare.summary("x", run)
    assert str(run / "recipe.lock.toml") in str(exc.value) and "not valid TOML" in str(exc.value)


def test_a_lock_without_a_recipe_table_gives_an_empty_row(tmp_path):
    run = _run(tmp_path, lock='fingerprint = "abc"\n')
    row = compare.summary("v", run)
    assert row == {"variant": "v", "run": str(run), "targets": "-", "generate": None, "train": None,
                   "benchmarks": {}}


def test_the_items_are_the_runs_own_generate_folder_unless_train_data_names_others(tmp_path):
    run = tmp_path / "out" / "plain"
    assert compare.items_folder(run, {}) == run / "generate"
    assert compare.items_folder(run, {"train": {"cot": False}}) == run / "generate"
    assert compare.items_folder(run, {"train": {"data": "{run}/../cot/generate"}}) == Path(f"{run}/../cot/generate")
    assert compare.items_folder(run, {"train": {"data": "/data/shards"}}) == Path("/data/shards")


# --- generation ---------------------------------------------------------------------------------------------------


def test_generation_figures_come_from_the_shards_and_the_rejects(tmp_path):
    folder = tmp_path / "generate"
    accepted = [msgspec.structs.replace(tone_record(i), trace=_calls(3, 80)) for i in range(2)]
    _sink_write(folder, accepted)
    reject = msgspec.structs.replace(tone_record(2), verdict="rejected", cot=None, reason="gate/x: no",
                                     trace=_calls(1, 40))
    _jsonl(folder / "rejects-000000.jsonl", [msgspec.json.encode(reject).decode()])
    # 7 calls and (6 * 80 + 40) / 4 = 130 tokens for 2 accepted of 3 items
    assert compare.generation(folder) == {"items": 3, "accepted": 2, "yield": 0.6667, "calls_per_sample": 3.5,
                                          "tokens_per_sample": 65.0}


def test_a_generation_that_accepted_nothing_still_counts_its_items(tmp_path):
    folder = tmp_path / "generate"
    reject = msgspec.structs.replace(tone_record(0), verdict="rejected", cot=None, reason="gate/x: no")
    _jsonl(folder / "rejects-000000.jsonl", [msgspec.json.encode(reject).decode()])
    assert compare.generation(folder) == {"items": 1, "accepted": 0, "yield": 0.0, "calls_per_sample": None,
                                          "tokens_per_sample": None}


def test_a_folder_without_shards_or_rejects_has_no_generation(tmp_path):
    (tmp_path / "generate").mkdir()
    (tmp_path / "generate" / "stats.json").write_text("{}")
    assert compare.generation(tmp_path / "generate") is None
    assert compare.generation(tmp_path / "absent") is None


def test_training_answers_are_counted_per_question_lower_cased(tmp_path):
    records = [tone_record(i) for i in range(5)]  # high, low, high, low, high
    records.append(msgspec.structs.replace(records[0], item=msgspec.structs.replace(
        records[0].item, id="tone-loud", question="  Is the tone high or low? ", answer=" HIGH ")))
    _sink_write(tmp_path / "shards", records)
    assert compare.train_answers(tmp_path / "shards") == {"Is the tone high or low?": Counter(high=4, low=2)}


# --- training -----------------------------------------------------------------------------------------------------


def test_training_figures_are_rounded_to_a_tenth(tmp_path):
    run = _run(tmp_path)
    steps = [{"step": s, "loss": 2.0 / s, "samples": 3, "samples_per_s": 7.0, "tokens": 500} for s in (1, 2)]
    _jsonl(run / "train" / "metrics.jsonl", steps)
    # 2 * 3 / 7 = 0.857 s; 1000 tokens / 6 samples = 166.67
    assert compare.training(run) == {"steps": 2, "perception_steps": 0, "train_s": 0.9, "final_loss": 1.0,
                                     "tokens_per_sample": 166.7}


def test_a_perception_stage_counts_its_steps_and_time_but_not_its_loss_or_tokens(tmp_path):
    run = _run(tmp_path)
    step = {"loss": 0.5, "samples": 4, "samples_per_s": 2.0, "tokens": 80}
    _jsonl(run / "train" / "metrics.jsonl", [{"step": s, **step} for s in (1, 2, 3)])
    _jsonl(run / "train" / "perception" / "metrics.jsonl",
           [{"step": s, **step, "loss": 9.0, "tokens": 8000} for s in (1, 2)])
    train = compare.training(run)
    assert train == {"steps": 3, "perception_steps": 2, "train_s": 10.0, "final_loss": 0.5, "tokens_per_sample": 20.0}
    assert "| 2 + 3 | 10 s | 0.500 | 20 |" in compare.table([{"variant": "v", "targets": "CoT", "generate": None,
                                                              "train": train, "benchmarks": {}}])


def test_a_resumed_training_counts_each_step_once_the_last_written(tmp_path):
    run = _run(tmp_path)
    rows = [{"step": 1, "loss": 3.0, "samples": 4, "samples_per_s": 4.0, "tokens": 40},
            {"step": 2, "loss": 2.0, "samples": 4, "samples_per_s": 4.0, "tokens": 40},
            {"step": 2, "loss": 1.5, "samples": 4, "samples_per_s": 4.0, "tokens": 80}]
    _jsonl(run / "train" / "metrics.jsonl", rows)
    assert compare.training(run) == {"steps": 2, "perception_steps": 0, "train_s": 2.0, "final_loss": 1.5,
                                     "tokens_per_sample": 15.0}


def test_a_torn_last_line_ends_the_steps_read_so_far(tmp_path):
    run = _run(tmp_path)
    steps = [{"step": s, "loss": 1.0, "samples": 4, "samples_per_s": 4.0, "tokens": 40} for s in (1, 2)]
    _jsonl(run / "train" / "metrics.jsonl", [*steps, '{"step": 3, "lo'])
    train = compare.training(run)
    assert train["steps"] == 2 and train["train_s"] == 2.0 and train["tokens_per_sample"] == 10.0


def test_a_training_without_steps_has_no_loss_and_no_tokens(tmp_path):
    run = _run(tmp_path)
    _jsonl(run / "train" / "metrics.jsonl", [{"event": "start"}])
    assert compare.training(run) == {"steps": 0, "perception_steps": 0, "train_s": 0.0, "final_loss": None,
                                     "tokens_per_sample": None}
    assert compare.training(tmp_path / "untrained") is None


# --- targets ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("train, expected", [
    (None, "-"),
    ({"data": "x"}, "CoT"),
    ({"cot": False}, "plain"),
    ({"sources": [{"use": "a"}, {"use": "b"}]}, "CoT"),
    ({"sources": [{"use": "a"}, {"use": "b", "cot": False}]}, "CoT + plain"),
    ({"cot": False, "sources": [{"use": "a", "cot": True}]}, "CoT"),
    ({"cot": False, "sources": [{"use": "a", "cot": True}, {"use": "b"}]}, "CoT + plain"),
])
def test_the_targets_name_what_the_student_was_trained_on(train, expected):
    assert compare.targets({} if train is None else {"train": train}) == expected


# --- evaluation ---------------------------------------------------------------------------------------------------


def _bench(run: Path, label: str, predictions: list[dict], report_doc: dict | None = None) -> None:
    folder = run / "evaluate" / label
    _jsonl(folder / f"{label}-predictions.jsonl", predictions)
    (folder / "report.json").write_text(json.dumps(report_doc or {"overall": {"accuracy": 0.5, "total": 2}}))


TONE = "Is the tone high or low?"


def test_the_question_prior_is_the_score_of_the_most_frequent_training_answer(tmp_path):
    """Answers that are no option of the item are ignored, a tie shares the point, an unseen question scores
    1 / options."""
    run = _run(tmp_path)
    _bench(run, "mcq", [
        {"question": f" {TONE} ", "choices": ["High", "Low"], "answer": "High"},  # the most frequent: 1
        {"question": TONE, "choices": ["high", "low"], "answer": "low"},  # not it: 0
        {"question": "Classify the sound.", "choices": ["a", "b", "c", "d"], "answer": "a"},  # unseen: 1/4
        {"question": "Which?", "choices": ["a", "b", "c"], "answer": "a"},  # a tie of two: 1/2
    ])
    answers = {TONE: Counter(high=3, low=1, medium=5), "Which?": Counter(a=2, b=2, c=1)}
    bench = compare.evaluation(run, answers)["mcq"]
    assert bench["chance"] == pytest.approx((1 / 2 + 1 / 2 + 1 / 4 + 1 / 3) / 4)
    assert bench["question_prior"] == pytest.approx((1 + 0 + 1 / 4 + 1 / 2) / 4)


def test_a_prediction_without_a_question_counts_as_the_empty_question(tmp_path):
    run = _run(tmp_path)
    _bench(run, "mcq", [{"choices": ["yes", "no"], "answer": "yes"}])
    assert compare.evaluation(run, {"": Counter(yes=2), "None": Counter(no=2)})["mcq"]["question_prior"] == 1.0


def test_without_training_items_there_is_chance_but_no_question_prior(tmp_path):
    run = _run(tmp_path, lock='[recipe.evaluate]\ncot = true\n')
    _bench(run, "mcq", [{"question": TONE, "choices": ["high", "low"], "answer": "high"}])
    bench = compare.summary("v", run)["benchmarks"]["mcq"]
    assert bench["chance"] == 0.5 and bench["question_prior"] is None


@pytest.mark.parametrize("predictions", [
    [{"question": TONE, "prediction": "high", "answer": "high"}],  # open questions: no choices
    [{"question": TONE, "choices": None, "answer": "high"}],
    [{"question": TONE, "choices": [], "answer": "high"}],
    [{"question": TONE, "choices": ["high", "low"]}],  # no answer
    [{"question": TONE, "choices": ["high", "low"], "answer": "high"}, {"question": TONE, "answer": "low"}],
    [],
])
def test_a_prediction_file_without_choices_and_answers_for_every_item_has_no_chance(tmp_path, predictions):
    run = _run(tmp_path)
    _bench(run, "open", predictions)
    bench = compare.evaluation(run, {TONE: Counter(high=1)})["open"]
    assert bench == {"accuracy": 0.5, "total": 2, "groups": {}}


def test_accuracy_per_subset_leaves_out_the_overall_and_diagnostics(tmp_path):
    run = _run(tmp_path)
    doc = {"overall": {"accuracy": 0.75, "total": 4}, "diagnostics": {"unparsed": {"accuracy": 0.0}},
           "subset": {"AQA-MCQ": {"accuracy": 1.0}, "Classification": {"accuracy": 0.5}}, "note": "text"}
    _bench(run, "embedded-eval", [], doc)
    (run / "evaluate" / "unfinished").mkdir()
    assert compare.evaluation(run, {}) == {"embedded-eval": {"accuracy": 0.75, "total": 4,
                                                              "groups": {"AQA-MCQ": 1.0, "Classification": 0.5}}}


def test_a_run_compares_end_to_end_from_its_lock_shards_metrics_and_reports(tmp_path):
    """The training items of ``train.data`` (``{run}`` replaced) give the question prior."""
    run = _run(tmp_path, lock='[recipe.train]\ncot = true\ndata = "{run}/../cot/generate"\n', name="out/plain")
    write_shards(tmp_path / "out" / "cot" / "generate", 3, per_shard=3)  # high, low, high
    _bench(run, "mcq", [{"question": TONE, "choices": ["high", "low"], "answer": "high"}])
    row = compare.summary("plain", run)
    assert row["generate"]["items"] == 3 and row["benchmarks"]["mcq"]["question_prior"] == 1.0


# --- the audit's text report --------------------------------------------------------------------------------------


def _checked(i: int, flagged: bool) -> Record:
    record = tone_record(i)
    return msgspec.structs.replace(record, codes=[CHECKED, *([FLAGGED] if flagged else [])])


def test_the_audit_report_gives_rate_interval_and_the_checks_agreement():
    labels = {"tone-000": "does-not-follow", "tone-001": "does-not-follow", "tone-002": "follows",
              "tone-003": "follows"}
    records = {"tone-000": _checked(0, True), "tone-001": _checked(1, False), "tone-002": _checked(2, False),
               "tone-003": tone_record(3)}
    text = report(score(labels, 5, records), {"run": "/runs/r"})
    assert text.split("\n") == [
        "labelled 4 (1 of the sample not labelled)",
        "false causality (does not follow): 2 of 4 = 50.0 %, 95 % Wilson interval 15.0 % – 85.0 %",
        "causality check on 3 labelled records (positive: does not follow): tp 1, fp 0, fn 1, tn 1",
        "precision 100.0 %, recall 50.0 %"]


def test_the_audit_report_names_the_run_whose_records_carry_no_check():
    text = report(score({"a": "follows", "b": "follows", "c": "does-not-follow"}, 3, {}), {"run": "/runs/r"})
    assert text.split("\n") == [
        "labelled 3",
        "false causality (does not follow): 1 of 3 = 33.3 %, 95 % Wilson interval 6.1 % – 79.2 %",
        "no labelled record of /runs/r carries the causality check's verdict (causality = true on the strategy)"]


def test_the_audit_report_without_labels_or_run_shows_dashes_and_asks_for_the_run():
    text = report(score({}, 2), {"run": None})
    assert text.split("\n") == [
        "labelled 0 (2 of the sample not labelled)",
        "false causality (does not follow): 0 of 0 = —, 95 % Wilson interval 0.0 % – 100.0 %",
        "the run was not found: give --run RUN for the causality check's agreement"]


def test_the_audit_report_shows_no_precision_when_the_check_flagged_nothing():
    text = report(score({"tone-000": "follows"}, 1, {"tone-000": _checked(0, False)}), {"run": "/runs/r"})
    assert text.split("\n")[2:] == [
        "causality check on 1 labelled records (positive: does not follow): tp 0, fp 0, fn 0, tn 1",
        "precision —, recall —"]


def test_the_comparison_table_is_word_for_word_and_drops_only_empty_columns():
    rows = [
        {"variant": "cot", "targets": "CoT", "generate": {"accepted": 30, "items": 40, "yield": 0.75,
                                                          "calls_per_sample": 4.256, "tokens_per_sample": 812.4},
         "train": {"steps": 400, "perception_steps": 100, "train_s": 95.0, "final_loss": 0.12345,
                   "tokens_per_sample": 96.6},
         "benchmarks": {"embedded-eval": {"accuracy": 0.625, "total": 40, "groups": {"AQA-MCQ": 0.5, "Yes/No": 0.75},
                                          "chance": 0.375, "question_prior": None}}},
        {"variant": "plain", "targets": "answer", "generate": None,
         "train": {"steps": 400, "train_s": 42.4, "final_loss": None, "tokens_per_sample": 12.0},
         "benchmarks": {}},
    ]
    assert compare.table(rows) == (
        "## Generation and training\n\n"
        "| variant | targets | items | yield | calls / sample | tokens / sample | steps | train time | final loss "
        "| train tokens / sample |\n"
        "|---|---|---|---|---|---|---|---|---|---|\n"
        "| cot | CoT | 30 / 40 | 75.0% | 4.26 | 812 | 100 + 400 | 1.6 min | 0.123 | 97 |\n"
        "| plain | answer | - | - | - | - | 400 | 42 s | - | 12 |\n\n"
        "## embedded-eval\n\n"
        "| variant | accuracy | AQA-MCQ | Yes/No | chance |\n"
        "|---|---|---|---|---|\n"
        "| cot | 62.5% of 40 | 50.0% | 75.0% | 37.5% |\n"
        "| plain | - | - | - | - |\n")
    assert compare.table([{**rows[1], "train": None}]) == (
        "## Generation and training\n\n| variant | targets |\n|---|---|\n| plain | answer |\n\n"
        "No variant was evaluated.\n")
