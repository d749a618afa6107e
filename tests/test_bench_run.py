"""``afcot bench run`` and the recipe ``[evaluate]`` stage: reports, resume, batching, repair, failures."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import msgspec
import pytest
import structlog
from afcot_benchmarks.stage import EvaluateStage

from afcot_core import cli, recipe, runner
from afcot_core import plugins as loader
from afcot_core.errors import BadInput
from afcot_core.hookspecs import hookimpl
from afcot_core.progress import Bar
from afcot_core.teacher import Batching, Request, Teacher

AF_DIR = Path(__file__).parent / "fixtures" / "bench" / "af_eval"
TRUNCATED = "<SUMMARY> s </SUMMARY>\n<CAPTION> c </CAPTION>\n<REASONING> It sounds like water. Boats creak"
MCQ = json.loads((AF_DIR / "AQA_MCQ.json").read_text())["data"].values()
GOLD = {e["prompt"].split("\n")[0]: e["output"] for e in MCQ}
FAIL_ON: set[str] = set()
CALLS: list[list[str]] = []


class ScriptedConfig(msgspec.Struct, forbid_unknown_fields=True):
    mode: str = "gold"  # gold | truncate
    max_batch: int = 8


class Scripted(Teacher):
    """Answers AF fixture questions: the gold in CONCLUSION, or a CoT cut off inside REASONING."""

    role = "alm"
    model = "scripted"
    offload = False

    def __init__(self, config: ScriptedConfig) -> None:
        super().__init__(Batching(max_batch=config.max_batch, max_wait_ms=2))
        self.mode = config.mode

    def generate(self, requests: list[Request]) -> list[str]:
        CALLS.append([r.prompt + r.prefix for r in requests])
        if any(word in r.prompt for r in requests for word in FAIL_ON):
            raise RuntimeError("engine fell over")
        return [self.reply(r) for r in requests]

    def reply(self, request: Request) -> str:
        gold = GOLD.get(request.prompt.split("\n")[0], "Man")
        if request.prefix.endswith("</REASONING>\n<CONCLUSION>"):
            return f" {gold} </CONCLUSION>"
        return TRUNCATED if self.mode == "truncate" else f"<CONCLUSION> {gold} </CONCLUSION>"


class FakePlugin:
    @hookimpl
    def register_teacher_alms(self, register):
        register("scripted", Scripted, ScriptedConfig, "test teacher")


@pytest.fixture(scope="module")
def fake_plugins():
    return loader.load(extra={"fake": FakePlugin()})


@pytest.fixture
def audio_root(tmp_path):
    """Audio for every AQA-MCQ item except "rain on roof.wav"."""
    folder = tmp_path / "audio" / "Clotho-AQA" / "audio_files"
    folder.mkdir(parents=True)
    (folder / "harbour walk.wav").write_bytes(b"RIFF")
    FAIL_ON.clear()
    CALLS.clear()
    return tmp_path / "audio"


def section(plugins, audio_root, **settings):
    model = settings.pop("model", {"use": "scripted"})
    table = {"model": model, "concurrency": 8, **settings,
             "benchmarks": [{"use": "af-reasoning-eval", "data_dir": str(AF_DIR), "subsets": ["AQA-MCQ"],
                             "audio_root": str(audio_root)}]}
    return EvaluateStage().parse(table, plugins)


def run(sec, out: Path) -> dict:
    return sec.run_into(out, structlog.get_logger(), lambda name, total: Bar(name, total, False))["af-reasoning-eval"]


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_bench_run_on_the_embedded_world_writes_three_report_formats(tmp_path, capsys):
    argv = ["bench", "run", "embedded-eval", "--model", "embedded-alm", "--out", str(tmp_path), "--quiet",
            "--set", "benchmark.items=12"]
    assert cli.main(argv) == 0
    out = tmp_path / "embedded-eval"
    report = json.loads((out / "report.json").read_text())
    assert report["overall"]["total"] >= 8 and set(report) == {"overall", "subset"}
    assert (out / "report.md").read_text().startswith("# embedded-eval: embedded-alm")
    assert (out / "plots" / "subset.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(lines(out / "predictions.jsonl")) == report["overall"]["total"]
    assert (out / "embedded-eval-predictions.jsonl").exists()
    assert "| overall | correct |" in capsys.readouterr().out
    # a rerun resumes: nothing is predicted twice, the scores are the same
    assert cli.main(argv) == 0
    assert len(lines(out / "predictions.jsonl")) == report["overall"]["total"]
    assert json.loads((out / "report.json").read_text()) == report
    # the same folder refuses another setting
    assert cli.main([*argv, "--no-cot"]) == 2
    assert "different model, benchmark or setting" in capsys.readouterr().err


def test_bench_run_reports_bad_input(tmp_path, capsys):
    assert cli.main(["bench", "run", "mmau", "--model", "embedded-alm", "--out", str(tmp_path), "--quiet",
                     "--set", f"benchmark.data_dir={tmp_path}"]) == 2
    assert "MMAU file not found" in capsys.readouterr().err
    assert cli.main(["bench", "run", "mmau", "--model", "embeded-alm", "--quiet"]) == 2
    assert "did you mean 'embedded-alm'" in capsys.readouterr().err


def test_items_are_batched_and_missing_audio_counts_as_wrong(fake_plugins, audio_root, tmp_path):
    summary = run(section(fake_plugins, audio_root), tmp_path)
    assert (summary["items"], summary["missing_audio"], summary["correct"], summary["missing"]) == (3, 1, 2, 1)
    assert max(len(batch) for batch in CALLS) == 2  # the two items with audio went out together
    report = json.loads((tmp_path / "af-reasoning-eval" / "report.json").read_text())
    assert report["overall"] == {"correct": 2, "total": 3, "accuracy": 2 / 3, "missing": 1}
    official = json.loads((tmp_path / "af-reasoning-eval" / "AQA_MCQ.predictions.json").read_text())
    assert official["flamingo_task"] == "AF-Reasoning-Eval-AQA-MCQ" and official["data"]["1"]["prediction"] == ""


def test_repair_regenerates_once_from_the_cut_reasoning(fake_plugins, audio_root, tmp_path):
    plain = run(section(fake_plugins, audio_root, model={"use": "scripted", "mode": "truncate"}), tmp_path / "a")
    assert (plain["correct"], plain["repaired"]) == (0, 0)
    fixed = run(section(fake_plugins, audio_root, model={"use": "scripted", "mode": "truncate"}, repair=True),
                tmp_path / "b")
    assert (fixed["correct"], fixed["repaired"]) == (2, 2)
    prefix = TRUNCATED.split(".")[0] + "</REASONING>\n<CONCLUSION>"
    assert any(p.endswith(prefix) for batch in CALLS for p in batch)  # continued after the cut reasoning
    first = lines(tmp_path / "b" / "af-reasoning-eval" / "predictions.jsonl")[0]
    assert first["repaired"] and first["first_output"] == TRUNCATED and first["output"].startswith(prefix)


def test_failed_calls_count_as_wrong_and_are_retried_on_rerun(fake_plugins, audio_root, tmp_path):
    (audio_root / "Clotho-AQA" / "audio_files" / "rain on roof.wav").write_bytes(b"RIFF")
    FAIL_ON.add("falling on the roof")
    sec = section(fake_plugins, audio_root, model={"use": "scripted", "max_batch": 1})
    first = run(sec, tmp_path)
    assert (first["failed"], first["correct"], first["missing"]) == (1, 2, 1)
    predictions = tmp_path / "af-reasoning-eval" / "predictions.jsonl"
    with predictions.open("a") as f:
        f.write('{"id": "AQA-MCQ/9", "outp')  # a torn last line, as after a crash
    FAIL_ON.clear()
    CALLS.clear()
    second = run(sec, tmp_path)
    assert (second["failed"], second["correct"], second["missing"]) == (0, 3, 0)
    assert [[sec.benchmarks["af-reasoning-eval"].build().load().items[1].prompt]] == CALLS
    assert [p["id"] for p in lines(predictions)] == ["AQA-MCQ/0", "AQA-MCQ/2", "AQA-MCQ/1"]


def test_withheld_answers_give_the_submission_file_only(fake_plugins, tmp_path):
    records = json.loads((AF_DIR.parent / "mmau_mini.json").read_text())
    (tmp_path / "test-mini-audios").mkdir()
    for r in records:
        (tmp_path / r["audio_id"]).write_bytes(b"RIFF")
    test_file = tmp_path / "mmau-test.json"
    test_file.write_text(json.dumps([{**r, "answer": "", "split": "test"} for r in records]))
    sec = EvaluateStage().parse({"model": {"use": "scripted"}, "benchmarks": [
        {"use": "mmau", "data_dir": str(tmp_path), "subset": "test"}]}, fake_plugins)
    summary = sec.run_into(tmp_path / "out", structlog.get_logger(), lambda n, t: Bar(n, t, False))["mmau"]
    assert summary["scored"] is False and not (tmp_path / "out" / "mmau" / "report.json").exists()
    submission = json.loads((tmp_path / "out" / "mmau" / "mmau-predictions.json").read_text())
    assert [r["model_output"] for r in submission] == ["Man"] * 8 and submission[0]["id"] == "mmau-fx-01"


def test_recipe_evaluate_stage_runs_and_round_trips(fake_plugins, audio_root, tmp_path):
    table = {"cot": True, "repair": False, "concurrency": 4, "limit": 2,
             "model": {"use": "scripted"},
             "benchmarks": [{"use": "af-reasoning-eval", "label": "af-mcq", "data_dir": str(AF_DIR),
                             "subsets": ["AQA-MCQ"], "audio_root": str(audio_root)}]}
    parsed = recipe.parse({"run": {"name": "ev", "stages": ["evaluate"]}, "evaluate": table}, fake_plugins,
                          Path("r.toml"))
    assert EvaluateStage().parse(parsed.stages["evaluate"].to_table(), fake_plugins).to_table() == \
        parsed.stages["evaluate"].to_table()
    result = runner.run(parsed, fake_plugins, tmp_path, show_progress=False)
    assert result["evaluate"]["af-mcq"]["total"] == 2
    assert (tmp_path / "evaluate" / "af-mcq" / "plots" / "subset.png").exists()


@pytest.mark.parametrize(("change", "message"), [
    (lambda t: t.pop("model"), "missing key 'evaluate.model'"),
    (lambda t: t.update(benchmarks=[]), "non-empty array"),
    (lambda t: t.update(batch=3), "[evaluate] unknown key 'batch'"),
    (lambda t: t.update(concurrency=0), "concurrency must be >= 1"),
    (lambda t: t["benchmarks"][0].update(subset="AQA-MCQ"), "[evaluate.benchmarks[0]] unknown key 'subset' "
                                                             "(did you mean 'subsets'?)"),
    (lambda t: t["benchmarks"][0].update(use="mmua"), "did you mean 'mmau'"),
    (lambda t: t["benchmarks"].append(dict(t["benchmarks"][0])), "used twice"),
    (lambda t: t["benchmarks"][0].update(subsets=["AQA"]), "unknown subset 'AQA'"),
])
def test_evaluate_table_errors_name_the_key(fake_plugins, change, message):
    table = {"model": {"use": "scripted"}, "benchmarks": [{"use": "af-reasoning-eval"}]}
    change(table)
    with pytest.raises(BadInput) as err:
        EvaluateStage().parse(table, fake_plugins)
    assert message in str(err.value)


def test_the_documented_recipe_table_validates(plugins):
    docs = (Path(__file__).resolve().parents[1] / "docs" / "benchmarks.md").read_text(encoding="utf-8")
    block = next(b for b in docs.split("```toml")[1:] if "[evaluate]" in b).split("```")[0]
    parsed = recipe.parse(tomllib.loads(block), plugins, Path("docs.toml"))
    section = parsed.stages["evaluate"]
    assert list(section.benchmarks) == ["embedded-eval", "af-eval", "mmau"]
    assert section.settings.concurrency == 64 and section.model.registration.name == "embedded-alm"
