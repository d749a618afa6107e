"""MMAU and MMAR: loaders, official breakdowns, missing predictions and ``afcot bench score``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from afcot_benchmarks.mmar import Mmar, MmarConfig
from afcot_benchmarks.mmau import Mmau, MmauConfig
from afcot_benchmarks.scoring import score

from afcot_core import cli

FIXTURES = Path(__file__).parent / "fixtures" / "bench"
MMAU_FILE = FIXTURES / "mmau_mini.json"
MMAR_FILE = FIXTURES / "mmar_mini.jsonl"


def with_predictions(records: list[dict], key: str, predictions: dict[str, object]) -> list[dict]:
    """The records with ``key`` set where ``predictions`` names the id (absent elsewhere)."""
    return [{**r, key: predictions[r["id"]]} if r["id"] in predictions else dict(r) for r in records]


def mmau_records() -> list[dict]:
    return json.loads(MMAU_FILE.read_text(encoding="utf-8"))


def mmar_records() -> list[dict]:
    return [json.loads(line) for line in MMAR_FILE.read_text(encoding="utf-8").splitlines()]


def write(path: Path, records: list[dict]) -> Path:
    if path.suffix == ".jsonl":
        path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")
    else:
        path.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    return path


def bench_score(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(["bench", "score", *argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_mmau_gold_scores_full_marks_in_official_group_order(tmp_path):
    records = mmau_records()
    gold = {r["id"]: r["answer"] for r in records}
    path = write(tmp_path / "p.json", with_predictions(records, "model_output", gold))
    bench = Mmau(MmauConfig())
    report = score(bench, bench.read_predictions(path), extract=False)
    assert report.overall.to_dict() == {"correct": 8, "total": 8, "accuracy": 1.0, "missing": 0}
    assert list(report.breakdowns["task"]) == ["sound", "music", "speech"]
    assert list(report.breakdowns["difficulty"]) == ["easy", "hard", "medium"]
    assert list(report.breakdowns["sub-category"])[:3] == ["Acoustic Source Inference",
                                                          "Harmony and Chord Progressions", "Counting"]
    assert report.breakdowns["category"]["Reasoning"].total == 4  # the list-valued ["Reasoning"] included
    assert all(s.accuracy == 1.0 for groups in report.breakdowns.values() for s in groups.values())


def test_mmau_edge_cases_through_the_scorer(tmp_path):
    predictions = {"mmau-fx-01": "MAN!!!", "mmau-fx-02": "(A) C major", "mmau-fx-03": "fourteen",
                   "mmau-fx-04": "1.63", "mmau-fx-05": "答案：钢琴", "mmau-fx-06": "B", "mmau-fx-07": "",
                   "mmau-fx-08": None}
    path = write(tmp_path / "p.json", with_predictions(mmau_records(), "model_output", predictions))
    bench = Mmau(MmauConfig())
    report = score(bench, bench.read_predictions(path), extract=False)
    assert (report.overall.correct, report.overall.total, report.overall.missing) == (4, 8, 1)
    assert report.missing_ids == ["mmau-fx-08"]
    assert report.breakdowns["task"]["sound"].to_dict() == {"correct": 2, "total": 3, "accuracy": 2 / 3,
                                                            "missing": 0}
    skipped = score(bench, bench.read_predictions(path), extract=False, skip_missing=True)
    assert (skipped.overall.total, skipped.skipped_ids) == (7, ["mmau-fx-08"])


def test_mmau_reads_the_readme_key_and_coerces_null(tmp_path):
    records = with_predictions(mmau_records(), "model_prediction", {"mmau-fx-01": "man"})
    records[1]["model_output"] = None
    pairs = Mmau(MmauConfig()).read_predictions(write(tmp_path / "p.json", records))
    assert pairs[0][1] == "man" and pairs[1][1] is None and pairs[2][1] is None


def test_bench_score_prints_tables_warns_and_writes_json_and_markdown(tmp_path, capsys):
    records = with_predictions(mmau_records()[:6], "model_output",
                               {r["id"]: r["answer"] for r in mmau_records()[:5]})
    out = tmp_path / "scores" / "mmau.json"
    code, stdout, stderr = bench_score(capsys, "mmau", str(write(tmp_path / "p.json", records)), "--json", str(out))
    assert code == 0
    assert "| sound | 2 | 2 | 100.00 | 0 |" in stdout
    assert "1 of 6 items have no prediction" in stderr
    doc = json.loads(out.read_text())
    assert doc["overall"] == {"correct": 5, "total": 6, "accuracy": 5 / 6, "missing": 1}
    assert set(doc) == {"overall", "task", "difficulty", "sub-category", "category"}
    assert doc["task"]["speech"] == {"correct": 1, "total": 2, "accuracy": 0.5, "missing": 1}
    assert out.with_suffix(".md").read_text().startswith("# mmau: p.json")


def test_bench_score_extract_option_takes_the_last_conclusion(tmp_path, capsys):
    records = with_predictions(mmau_records()[:1], "model_output",
                               {"mmau-fx-01": "<REASONING> not a woman </REASONING><CONCLUSION> Man </CONCLUSION>"})
    path = str(write(tmp_path / "p.json", records))
    out = tmp_path / "s.json"
    assert bench_score(capsys, "mmau", path, "--json", str(out))[0] == 0
    assert json.loads(out.read_text())["overall"]["correct"] == 0  # official: the whole text is scored
    assert bench_score(capsys, "mmau", path, "--extract", "--json", str(out))[0] == 0
    assert json.loads(out.read_text())["overall"]["correct"] == 1


@pytest.mark.parametrize(("mutate", "message"), [
    (lambda r: r.update(task="noise"), "item 0.task: unknown value 'noise'"),
    (lambda r: r.update(difficulty="trivial"), "item 0.difficulty"),
    (lambda r: r.pop("answer"), "item 0: missing key 'answer'"),
    (lambda r: r.update(model_output=3), "item 0.model_output: expected a string"),
    (lambda r: r.update(category=7), "item 0.category"),
])
def test_bench_score_rejects_bad_records_with_exit_2(tmp_path, capsys, mutate, message):
    records = with_predictions(mmau_records()[:2], "model_output", {"mmau-fx-01": "man", "mmau-fx-02": "x"})
    mutate(records[0])
    code, _, stderr = bench_score(capsys, "mmau", str(write(tmp_path / "p.json", records)))
    assert code == 2 and message in stderr


def test_bench_score_refuses_withheld_answers(tmp_path, capsys):
    records = [{**r, "answer": "", "split": "test", "model_output": "Man"} for r in mmau_records()]
    code, _, stderr = bench_score(capsys, "mmau", str(write(tmp_path / "test.json", records)))
    assert code == 2 and "withheld" in stderr


def test_bench_score_unreadable_files_exit_2(tmp_path, capsys):
    bad = tmp_path / "p.json"
    bad.write_text("{not json")
    assert bench_score(capsys, "mmau", str(bad))[0] == 2
    assert bench_score(capsys, "mmau", str(tmp_path / "absent.json"))[0] == 2
    code, _, stderr = bench_score(capsys, "mmua", str(bad))
    assert code == 2 and "did you mean 'mmau'" in stderr


def test_mmar_jsonl_and_v1_json_give_the_same_scores(tmp_path):
    records = mmar_records()
    predictions = {records[0]["id"]: "Table tennis", records[1]["id"]: "3", records[2]["id"]: "not familiar",
                   records[3]["id"]: "clipping", records[4]["id"]: "Bbm"}
    jsonl = write(tmp_path / "p.jsonl", with_predictions(records, "answer_prediction", predictions))
    v1 = write(tmp_path / "p.json", with_predictions(records, "model_prediction", predictions))
    bench = Mmar(MmarConfig())
    a = score(bench, bench.read_predictions(jsonl), extract=False).to_json()
    b = score(bench, bench.read_predictions(v1), extract=False).to_json()
    assert a == b
    assert a["overall"]["correct"] == 3  # "Table tennis" fails for Tennis; "Bbm" fails for Bbm(add9)
    assert list(a["modality"])[:3] == ["sound", "music", "speech"] and len(a["modality"]) == 7
    assert list(a["category"]) == ["Signal Layer", "Perception Layer", "Semantic Layer", "Cultural Layer"]
    assert a["category"]["Signal Layer"] == {"correct": 1, "total": 1, "accuracy": 1.0, "missing": 0}
    assert a["modality"]["mix-sound-music"]["total"] == 0


def test_mmar_blank_lines_and_unknown_modality(tmp_path, capsys):
    records = with_predictions(mmar_records(), "answer_prediction", {})
    path = tmp_path / "p.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n\n", encoding="utf-8")
    code, stdout, stderr = bench_score(capsys, "mmar", str(path))
    assert code == 0 and "5 of 5 items have no prediction" in stderr and "| all | 0 | 5 | 0.00 | 5 |" in stdout
    records[2]["modality"] = "mix-everything"
    code, _, stderr = bench_score(capsys, "mmar", str(write(path, records)))
    assert code == 2 and "item 2.modality" in stderr


def test_mmar_loader_uses_audio_path_and_reports_missing_audio(tmp_path):
    (tmp_path / "audio").mkdir()
    (tmp_path / "audio" / "BV1fx0002_multi_segment.wav").write_bytes(b"RIFF")
    meta = tmp_path / "MMAR-meta.jsonl"
    meta.write_bytes(MMAR_FILE.read_bytes())
    loaded = Mmar(MmarConfig(data_dir=str(tmp_path))).load()
    assert len(loaded.items) == 5
    assert [it.id for it in loaded.items if it.audio is not None] == ["BV1fx0002"]
    assert len(loaded.missing_audio) == 4
    assert loaded.items[0].audio_path.endswith("audio/yt001_00-00-10_00-00-40.wav")


def test_prompts_with_and_without_cot():
    bench = Mmau(MmauConfig())
    item = bench.read_predictions(MMAU_FILE)[0][0]
    plain = bench.prompt(item, cot=False)
    assert plain == ("Who is speaking in the recording?\nSelect one option from the provided choices:\n"
                     "Man\nWoman\nChild\nRobot")
    assert bench.prompt(item, cot=True) == plain + "\nOutput the answer with <SUMMARY>, <CAPTION>, <REASONING>, " \
                                                  "and <CONCLUSION> tags."
    lettered = Mmau(MmauConfig(lettered=True))
    assert "(B) Woman" in lettered.prompt(item, cot=False)
    assert lettered.extract(item, "<CONCLUSION> (a) </CONCLUSION>") == "Man"
    assert bench.extract(item, "<CONCLUSION> (a) </CONCLUSION>") == "(a)"  # non-parsed: no letter mapping


def test_export_round_trips_through_the_official_format(tmp_path):
    bench = Mmau(MmauConfig())
    pairs = bench.read_predictions(MMAU_FILE)
    (name, text), = bench.export([(item, item.answer if i % 2 else None) for i, (item, _) in enumerate(pairs)]).items()
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    again = bench.read_predictions(path)
    assert [p for _, p in again] == [("" if i % 2 == 0 else item.answer) for i, (item, _) in enumerate(pairs)]
