"""``afcot bench score`` / ``afcot bench run`` options and the evaluate stage's outputs, through the public CLI."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import msgspec
import pytest
import structlog
import structlog.testing
from afcot_benchmarks.stage import EvaluateStage

from afcot_core import cli, recipe, runner
from afcot_core import plugins as loader
from afcot_core.errors import BadInput
from afcot_core.hookspecs import hookimpl
from afcot_core.teacher import Batching, Request, RetryPolicy, Teacher

from .conftest import run_cli

FIXTURES = Path(__file__).parent / "fixtures" / "bench"
LETTERS = "ABCDEFGH"


def bench(capsys, *args: str) -> tuple[int, str, str]:
    """``afcot bench ARGS`` in this process: exit code, stdout, stderr."""
    return run_cli(capsys, "bench", *args)


def mmau_records() -> list[dict]:
    return json.loads((FIXTURES / "mmau_mini.json").read_text(encoding="utf-8"))


def write_json(path: Path, records: list[dict]) -> Path:
    path.write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
    return path


def embedded_run(tmp_path: Path, *extra: str) -> list[str]:
    return ["run", "embedded-eval", "--model", "embedded-alm", "--out", str(tmp_path / "out"),
            "--set", "benchmark.items=12", *extra]


# --- afcot bench score -------------------------------------------------------------------------------------------


def test_bench_without_an_action_is_a_usage_error_naming_the_action(capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["bench"])
    assert exc.value.code == 2
    assert "the following arguments are required: ACTION" in capsys.readouterr().err


def test_bench_score_names_itself_when_the_benchmark_is_unknown(tmp_path, capsys):
    path = write_json(tmp_path / "p.json", mmau_records())
    code, _, err = bench(capsys, "score", "mmua", str(path))
    assert code == 2 and "error: bench score: unknown benchmark 'mmua'" in err


def test_bench_score_set_configures_the_benchmark_and_names_a_bad_key(tmp_path, capsys):
    records = [{**r, "model_output": f"({LETTERS[r['choices'].index(r['answer'])]})"} for r in mmau_records()]
    path = write_json(tmp_path / "p.json", records)
    out = tmp_path / "s.json"
    assert bench(capsys, "score", "mmau", str(path), "--extract", "--json", str(out))[0] == 0
    plain = json.loads(out.read_text())["overall"]["correct"]
    assert bench(capsys, "score", "mmau", str(path), "--extract", "--set", "lettered=true", "--json", str(out))[0] == 0
    assert json.loads(out.read_text())["overall"]["correct"] == 8 > plain  # a leading letter selects its option
    code, _, err = bench(capsys, "score", "mmau", str(path), "--set", "letterd=true")
    assert code == 2 and "error: [bench score --set] unknown key 'letterd' (did you mean 'lettered'?)" in err


def test_bench_score_refuses_a_file_without_items_naming_it(tmp_path, capsys):
    path = write_json(tmp_path / "empty.json", [])
    code, _, err = bench(capsys, "score", "mmau", str(path))
    assert code == 2 and f"error: {path}: holds no items" in err


def test_bench_score_skip_missing_leaves_items_out_and_writes_readable_json_in_new_folders(tmp_path, capsys):
    records = mmau_records()
    records[0]["sub-category"] = "Écoute"
    gold = [{**r, "model_output": r["answer"]} for r in records[:6]] + records[6:]  # the last two unanswered
    path = write_json(tmp_path / "p.json", gold)
    out = tmp_path / "a" / "b" / "scores.json"
    code, stdout, stderr = bench(capsys, "score", "mmau", str(path), "--skip-missing", "--json", str(out))
    assert code == 0
    assert stdout.startswith("# mmau: p.json\n") and "warning" not in stdout
    assert ("warning: 2 of 8 items have no prediction and were left out of every denominator "
            "(first: mmau-fx-07)") in stderr
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["overall"] == {"correct": 6, "total": 6, "accuracy": 1.0, "missing": 0}
    assert out.read_text(encoding="utf-8") == json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
    assert '"Écoute"' in out.read_text(encoding="utf-8")
    assert out.with_suffix(".md").read_text(encoding="utf-8").startswith("# mmau: p.json\n")


# --- afcot bench run ---------------------------------------------------------------------------------------------


def test_bench_run_passes_limit_concurrency_and_both_set_tables(tmp_path, capsys):
    code, stdout, err = bench(capsys, *embedded_run(tmp_path, "--quiet", "--limit", "3", "--concurrency", "2",
                                                    "--set", "model.top_k=3"))
    assert code == 0, err
    out = tmp_path / "out" / "embedded-eval"
    meta = json.loads((out / "run.json").read_text())
    assert meta["model"]["top_k"] == 3 and meta["model"]["use"] == "embedded-alm"
    assert meta["benchmark"]["items"] == 12
    assert meta["summary"]["items"] == 3
    start = stdout.index('{\n  "embedded-eval": {\n    "dir": ')
    results = json.loads(stdout[start:])
    assert results["embedded-eval"]["items"] == 3 and results["embedded-eval"]["dir"] == str(out)
    assert stdout.startswith("# embedded-eval: embedded-alm")  # the report, before the summary


def test_bench_run_quiet_logs_to_the_run_file_only(tmp_path, capsys):
    code, _, err = bench(capsys, *embedded_run(tmp_path, "--quiet", "--limit", "2"))
    assert code == 0
    assert "scored" not in err and "embedded-eval 2/2" not in err
    events = [json.loads(line) for line in (tmp_path / "out" / "logs" / "bench.jsonl").read_text().splitlines()]
    scored = [e for e in events if e["event"] == "scored"]
    assert scored and all(e["command"] == "bench run" and e["benchmark"] == "embedded-eval" for e in scored)


def test_bench_run_without_quiet_shows_progress_and_events(tmp_path, capsys):
    code, _, err = bench(capsys, *embedded_run(tmp_path, "--limit", "2"))
    assert code == 0
    assert "embedded-eval 2/2" in err and "scored" in err


def test_bench_run_writes_under_runs_bench_by_default(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = ["run", "embedded-eval", "--model", "embedded-alm", "--quiet", "--limit", "2",
            "--set", "benchmark.items=12"]
    assert bench(capsys, *argv)[0] == 0
    assert (tmp_path / "runs" / "bench" / "embedded-eval-embedded-alm" / "embedded-eval" / "report.json").is_file()
    assert (tmp_path / "runs" / "bench" / "embedded-eval-embedded-alm" / "logs" / "bench.jsonl").is_file()


def test_bench_run_set_keys_must_start_with_benchmark_or_model(tmp_path, capsys):
    code, _, err = bench(capsys, *embedded_run(tmp_path, "--set", "foo.x=1", "--set", "bar.y=2"))
    assert code == 2
    assert "error: --set foo...: expected benchmark.KEY=VALUE or model.KEY=VALUE" in err
    assert not (tmp_path / "out").exists()


def test_bench_run_lists_every_missing_input_before_starting(tmp_path, capsys):
    code, _, err = bench(capsys, "run", "mmau", "--model", "embedded-alm", "--out", str(tmp_path / "out"),
                         "--quiet", "--set", f"benchmark.data_dir={tmp_path / 'absent'}")
    assert code == 2
    assert "error: cannot start, inputs are missing:\n  [evaluate.benchmarks[0]] MMAU file not found: " in err
    assert "(set data_dir, subset or file)\n  [evaluate.benchmarks[0]] MMAU audio folder not found: " in err


# --- the [evaluate] table ----------------------------------------------------------------------------------------


def evaluate_table(**changes) -> dict:
    return {"model": {"use": "embedded-alm"}, "benchmarks": [{"use": "embedded-eval", "items": 4}], **changes}


@pytest.mark.parametrize(("table", "message"), [
    (["not", "a", "table"], "[evaluate]: expected a table"),
    ({"model": {"use": "embedded-alm"}}, "[evaluate] missing key 'evaluate.benchmarks'"),
    (evaluate_table(benchmarks={"use": "embedded-eval"}),
     "[evaluate] evaluate.benchmarks: expected a non-empty array of tables"),
    (evaluate_table(benchmarks=["embedded-eval"]), "[evaluate.benchmarks[0]]: expected a table with a 'use' key"),
    (evaluate_table(benchmarks=[]), "[evaluate] evaluate.benchmarks: expected a non-empty array of tables"),
    (evaluate_table(limit=-1), "[evaluate] concurrency must be >= 1 and limit >= 0"),
    (evaluate_table(concurrency=0), "[evaluate] concurrency must be >= 1 and limit >= 0"),
    (evaluate_table(prompt_layout="model-card"),
     '[evaluate] prompt_layout = "model-card" lays out the trained prompts; set format = "trained"'),
    (evaluate_table(model="embedded-alm"), "[evaluate.model]: expected a table with a 'use' key"),
    (evaluate_table(model={"use": "embedded-eval"}), "[evaluate.model] evaluate.model.use: unknown teacher_alm"),
    (evaluate_table(benchmarks=[{"use": "embedded-eval"}, {"use": "embedded-eval", "label": "embedded-eval"}]),
     "[evaluate.benchmarks[1]] evaluate.benchmarks[1].label: 'embedded-eval' is used twice; give each entry a label"),
])
def test_an_evaluate_table_of_the_wrong_shape_is_refused_naming_the_key(plugins, table, message):
    with pytest.raises(BadInput) as err:
        EvaluateStage().parse(table, plugins)
    assert message in str(err.value)


@pytest.mark.parametrize("label", ["", "a/b", ".hidden", 3])
def test_a_benchmark_label_must_be_a_plain_folder_name(plugins, label):
    table = evaluate_table(benchmarks=[{"use": "embedded-eval", "label": label}])
    with pytest.raises(BadInput) as err:
        EvaluateStage().parse(table, plugins)
    assert f"[evaluate.benchmarks[0]] evaluate.benchmarks[0].label: expected a folder name, got {label!r}" in \
        str(err.value)


def test_labels_name_the_benchmark_folders_and_round_trip_through_the_table(plugins):
    table = evaluate_table(limit=2, format="trained", prompt_layout="model-card",
                           benchmarks=[{"use": "embedded-eval", "items": 4},
                                       {"use": "embedded-eval", "items": 6, "label": "six"}])
    section = EvaluateStage().parse(table, plugins)
    assert list(section.benchmarks) == ["embedded-eval", "six"]
    assert [c.where for c in section.benchmarks.values()] == ["evaluate.benchmarks[0]", "evaluate.benchmarks[1]"]
    assert section.components() == [section.model, *section.benchmarks.values()]
    doc = section.to_table()
    assert doc["benchmarks"][1] == {"label": "six", "use": "embedded-eval", "items": 6, "seed": 9001,
                                    "source": "embedded"}
    assert (doc["limit"], doc["format"], doc["prompt_layout"], doc["model"]["use"]) == (2, "trained", "model-card",
                                                                                        "embedded-alm")
    assert EvaluateStage().parse(doc, plugins).to_table() == doc


# --- evaluation runs ---------------------------------------------------------------------------------------------

CUT = "<SUMMARY> s </SUMMARY>\n<CAPTION> c </CAPTION>\n<REASONING> It is steady. Then it"
ASKED: list[tuple[str, str]] = []
HEARD: dict[str, object] = {}  # prompt -> the audio it came with
BATCHES: list[int] = []
FAIL_ON: list[str] = []  # requests whose prompt holds one of these fail


class ScriptedConfig(msgspec.Struct, forbid_unknown_fields=True):
    #: a model folder, keyed by its checkpoint like a trained student's
    model: str | None = None
    #: the option letter every reply concludes with
    letter: str = "A"
    #: reply with a reasoning cut off before its conclusion
    cut: bool = False
    #: most requests in one engine call
    max_batch: int = 1


class Scripted(Teacher):
    """Concludes every reply with one option letter, or cuts it short; fails the prompts FAIL_ON names."""

    role = "alm"
    model = "scripted"
    offload = False

    def __init__(self, config: ScriptedConfig) -> None:
        super().__init__(Batching(max_batch=config.max_batch, max_wait_ms=1 if config.max_batch == 1 else 20))
        self.use_retry(RetryPolicy(retries=0, backoff_s=0))
        self.config = config

    def generate(self, requests: list[Request]) -> list[str]:
        ASKED.extend((r.prompt, r.prefix) for r in requests)
        HEARD.update((r.prompt, r.audio) for r in requests)
        BATCHES.append(len(requests))
        if any(word in r.prompt for r in requests for word in FAIL_ON):
            raise ValueError("engine fell over")
        if any(r.prefix for r in requests):
            return [f" ({self.config.letter}) </CONCLUSION>" for _ in requests]
        reply = CUT if self.config.cut else f"<CONCLUSION> ({self.config.letter}) </CONCLUSION>"
        return [reply for _ in requests]


class ScriptedPlugin:
    @hookimpl
    def register_teacher_alms(self, register):
        register("scripted", Scripted, ScriptedConfig, "test teacher")


@pytest.fixture(scope="module")
def scripted():
    return loader.load(extra={"scripted": ScriptedPlugin()})


class Tally:
    """A progress sink: the bars opened and every verdict recorded, with whether it was resumed."""

    def __init__(self) -> None:
        self.bars: list[tuple[str, int | None]] = []
        self.verdicts: list[tuple[str, bool]] = []
        self.events: list[dict] = []  # the run's log events

    def __call__(self, name: str, total: int | None) -> Tally:
        self.bars.append((name, total))
        return self

    def __enter__(self) -> Tally:
        return self

    def __exit__(self, *exc) -> None:
        return None

    def record(self, verdict: str, resumed: bool = False) -> None:
        self.verdicts.append((verdict, resumed))


def evaluate(plugins, out: Path, model: dict, bench: dict | None = None, **settings) -> tuple[dict, Tally]:
    """Evaluate ``bench`` (12 embedded-eval items by default) into ``out``: its summary and progress."""
    bench = bench or {"use": "embedded-eval", "items": 12}
    table = {"model": {"use": "scripted", **model}, "concurrency": 4, **settings, "benchmarks": [bench]}
    section = EvaluateStage().parse(table, plugins)
    tally = Tally()
    label = next(iter(section.benchmarks))
    with structlog.testing.capture_logs() as tally.events:
        summary = section.run_into(out, structlog.get_logger(), tally)[label]
    return summary, tally


def event(tally: Tally, name: str) -> dict:
    """The one log event called ``name``, without its level."""
    found = [{k: v for k, v in e.items() if k != "log_level"} for e in tally.events if e["event"] == name]
    assert len(found) == 1, tally.events
    return found[0]


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_each_item_is_asked_with_its_own_audio(scripted, tmp_path):
    from afcot_benchmarks.embedded_eval import EmbeddedEval, EmbeddedEvalConfig

    HEARD.clear()
    evaluate(scripted, tmp_path, {}, {"use": "embedded-eval", "items": 6})
    bench = EmbeddedEval(EmbeddedEvalConfig(items=6))
    items = bench.load().items
    assert {bench.prompt(i, cot=True): i.audio for i in items} == HEARD
    assert all(audio is not None for audio in HEARD.values()) and len({id(a) for a in HEARD.values()}) == len(items)


def test_every_item_is_asked_once_judged_and_recorded_then_resumed(scripted, tmp_path):
    ASKED.clear()
    summary, tally = evaluate(scripted, tmp_path, {})
    out = tmp_path / "embedded-eval"
    assert tally.bars == [("embedded-eval", 12)] and len(ASKED) == 12
    assert summary == {"dir": str(out), "items": 12, "failed": 0, "missing_audio": 0, "repaired": 0, "scored": True,
                       "correct": 7, "total": 12, "accuracy": 7 / 12, "missing": 0,
                       "plots": [str(out / "plots" / "subset.png")]}
    assert sorted(tally.verdicts) == [("accepted", False)] * 7 + [("rejected", False)] * 5
    predictions = lines(out / "predictions.jsonl")
    assert [p["output"] for p in predictions] == ["<CONCLUSION> (A) </CONCLUSION>"] * 12
    assert {p["answer"] for p in predictions} >= {"yes", "wind"}  # the letter selects its option
    assert all(set(p) == {"id", "output", "answer", "latency_s"} and p["latency_s"] == round(p["latency_s"], 4)
               for p in predictions)
    meta = json.loads((out / "run.json").read_text())
    assert {k: meta[k] for k in ("checkpoint", "cot", "format", "repair", "missing_audio", "failures")} == \
        {"checkpoint": "", "cot": True, "format": "benchmark", "repair": False, "missing_audio": [], "failures": {}}
    assert "prompt_layout" not in meta and meta["summary"] == {k: summary[k] for k in
                                                              ("dir", "items", "failed", "missing_audio", "repaired")}
    assert (out / "report.md").read_text().startswith("# embedded-eval: scripted\n")
    official = lines(out / "embedded-eval-predictions.jsonl")
    assert official[0]["prediction"] == "<CONCLUSION> (A) </CONCLUSION>"  # scored by re-extracting, as ours
    assert event(tally, "scored") == {"event": "scored", "benchmark": "embedded-eval", "accuracy": round(7 / 12, 4),
                                      "correct": 7, "total": 12, "missing": 0}
    ASKED.clear()
    again, tally = evaluate(scripted, tmp_path, {})
    assert ASKED == [] and again == summary
    assert event(tally, "resuming") == {"event": "resuming", "benchmark": "embedded-eval", "already_done": 12}
    assert sorted(tally.verdicts) == [("accepted", True)] * 7 + [("rejected", True)] * 5


def test_limit_takes_the_first_items_and_no_plots_writes_none(scripted, tmp_path):
    summary, tally = evaluate(scripted, tmp_path, {}, limit=5, plots=False, concurrency=1)
    out = tmp_path / "embedded-eval"
    assert tally.bars == [("embedded-eval", 5)]
    assert (summary["items"], summary["total"], summary["plots"]) == (5, 5, [])
    assert not (out / "plots").exists()
    assert [p["id"] for p in lines(out / "predictions.jsonl")] == [f"embedded-9001-{n:06d}" for n in range(5)]


@pytest.fixture
def fail_on():
    yield FAIL_ON
    FAIL_ON.clear()


def test_a_failed_call_is_recorded_counted_as_wrong_and_asked_again_on_rerun(scripted, fail_on, tmp_path):
    fail_on.append("(A) wind.")
    summary, tally = evaluate(scripted, tmp_path, {})
    fail_on.clear()
    assert (summary["failed"], summary["missing"], summary["correct"]) == (1, 1, 6)
    assert tally.verdicts.count(("failed", False)) == 1
    failure = "TeacherError: scripted: ValueError: engine fell over (after 1 tries)"
    meta = json.loads((tmp_path / "embedded-eval" / "run.json").read_text())
    assert meta["failures"] == {"embedded-9001-000003": failure}
    assert event(tally, "model calls failed; those items count as wrong and are retried on rerun") == {
        "event": "model calls failed; those items count as wrong and are retried on rerun",
        "benchmark": "embedded-eval", "count": 1, "first": failure}
    assert len(lines(tmp_path / "embedded-eval" / "predictions.jsonl")) == 11
    ASKED.clear()
    summary, tally = evaluate(scripted, tmp_path, {})
    assert [prompt for prompt, _ in ASKED if "(A) wind." in prompt] == [prompt for prompt, _ in ASKED]
    assert (len(ASKED), summary["failed"], summary["correct"]) == (1, 0, 7)
    assert [v for v in tally.verdicts if not v[1]] == [("accepted", False)]


def test_repair_continues_a_cut_reasoning_once_and_keeps_the_first_output(scripted, tmp_path):
    plain, _ = evaluate(scripted, tmp_path / "plain", {"cut": True})
    assert (plain["correct"], plain["repaired"]) == (0, 0)
    assert all("first_output" not in p for p in lines(tmp_path / "plain" / "embedded-eval" / "predictions.jsonl"))
    ASKED.clear()
    fixed, _ = evaluate(scripted, tmp_path / "fixed", {"cut": True}, repair=True)
    assert (fixed["correct"], fixed["repaired"]) == (7, 12)
    prefix = CUT.rsplit(".", 1)[0] + "</REASONING>\n<CONCLUSION>"
    assert sum(1 for _, p in ASKED if p == prefix) == 12 and len(ASKED) == 24
    first = lines(tmp_path / "fixed" / "embedded-eval" / "predictions.jsonl")[0]
    assert first["repaired"] is True and first["first_output"] == CUT
    assert first["output"] == prefix + " (A) </CONCLUSION>"
    assert json.loads((tmp_path / "fixed" / "embedded-eval" / "run.json").read_text())["repair"] is True


def test_a_model_folder_without_a_marker_is_keyed_by_its_files(scripted, tmp_path):
    folder = tmp_path / "student"
    folder.mkdir()
    (folder / "weights.bin").write_bytes(b"1234")
    (folder / "sub").mkdir()  # folders are not part of the key
    bench = {"use": "embedded-eval", "items": 4}
    evaluate(scripted, tmp_path / "eval", {"model": str(folder)}, bench)
    out = tmp_path / "eval" / "embedded-eval"
    first = json.loads((out / "run.json").read_text())["checkpoint"]
    assert len(first) == 64 and int(first, 16) >= 0
    ASKED.clear()
    evaluate(scripted, tmp_path / "eval", {"model": str(folder)}, bench)
    assert ASKED == []  # the same files: the predictions are reused
    (folder / "sub" / "notes.txt").write_text("x")
    evaluate(scripted, tmp_path / "eval", {"model": str(folder)}, bench)
    assert ASKED == []  # only the folder's own files count
    os.utime(folder / "weights.bin", ns=(10**18, 10**18))  # the same size, written again
    evaluate(scripted, tmp_path / "eval", {"model": str(folder)}, bench)
    assert len(ASKED) == 4
    first = json.loads((out / "run.json").read_text())["checkpoint"]
    ASKED.clear()
    (folder / "weights.bin").write_bytes(b"123456")
    _, tally = evaluate(scripted, tmp_path / "eval", {"model": str(folder)}, bench)
    assert len(ASKED) == 4
    second = json.loads((out / "run.json").read_text())["checkpoint"]
    assert len(second) == 64 and second != first
    moved = out / "previous" / first[:12]
    assert sorted(p.name for p in moved.iterdir()) == sorted(["embedded-eval-predictions.jsonl", "plots",
                                                              "predictions.jsonl", "report.json", "report.md",
                                                              "run.json"])
    assert json.loads((moved / "run.json").read_text())["checkpoint"] == first
    assert event(tally, "new checkpoint; earlier results moved") == {
        "event": "new checkpoint; earlier results moved", "benchmark": "embedded-eval", "to": str(moved)}


def test_going_back_to_an_earlier_checkpoint_resumes_its_results_and_keeps_the_other_aside(scripted, tmp_path):
    folder = tmp_path / "student"
    folder.mkdir()
    bench = {"use": "embedded-eval", "items": 4}
    out = tmp_path / "eval" / "embedded-eval"
    kept = {}
    for digest in "abab":
        (folder / "checkpoint.json").write_text(json.dumps({"digest": digest * 64}))
        ASKED.clear()
        _, tally = evaluate(scripted, tmp_path / "eval", {"model": str(folder)}, bench)
        again = digest in kept
        assert len(ASKED) == (0 if again else 4)  # a checkpoint evaluated before is not asked again
        assert json.loads((out / "run.json").read_text())["checkpoint"] == digest * 64
        assert (out / "predictions.jsonl").read_text() == kept.setdefault(digest, (out / "predictions.jsonl")
                                                                          .read_text())
        if again:
            assert event(tally, "checkpoint evaluated before; its results resumed")["source"] == \
                str(out / "previous" / (digest * 12))
    assert sorted(p.name for p in (out / "previous").iterdir()) == ["a" * 12]
    assert (out / "previous" / ("a" * 12) / "predictions.jsonl").read_text() == kept["a"]


def test_results_of_a_checkpoint_without_a_digest_move_to_previous_unknown(scripted, tmp_path):
    folder = tmp_path / "student"
    folder.mkdir()
    (folder / "checkpoint.json").write_text(json.dumps({"step": 3}))
    bench = {"use": "embedded-eval", "items": 4}
    evaluate(scripted, tmp_path / "eval", {"model": str(folder)}, bench, plots=False)
    out = tmp_path / "eval" / "embedded-eval"
    assert json.loads((out / "run.json").read_text())["checkpoint"] == ""
    (folder / "checkpoint.json").write_text(json.dumps({"digest": "c" * 64}))
    evaluate(scripted, tmp_path / "eval", {"model": str(folder)}, bench, plots=False)
    assert sorted(p.name for p in (out / "previous").iterdir()) == ["unknown"]
    assert (out / "previous" / "unknown" / "predictions.jsonl").is_file()
    assert json.loads((out / "run.json").read_text())["checkpoint"] == "c" * 64


def test_another_setting_in_the_same_folder_is_refused_and_changes_nothing(scripted, tmp_path):
    bench = {"use": "embedded-eval", "items": 4}
    evaluate(scripted, tmp_path, {}, bench)
    before = (tmp_path / "embedded-eval" / "run.json").read_text()
    for change in ({"cot": False}, {"repair": True}, {"format": "trained"}):
        with pytest.raises(BadInput, match="holds predictions of a different model, benchmark or setting"):
            evaluate(scripted, tmp_path, {}, bench, **change)
    with pytest.raises(BadInput, match="different model"):
        evaluate(scripted, tmp_path, {"letter": "B"}, bench)
    assert (tmp_path / "embedded-eval" / "run.json").read_text() == before
    assert not (tmp_path / "embedded-eval" / "previous").exists()


def test_the_trained_layout_is_part_of_the_identity_only_when_not_inline(scripted, tmp_path):
    ASKED.clear()
    bench = {"use": "embedded-eval", "items": 4}
    evaluate(scripted, tmp_path / "inline", {}, bench, format="trained")
    meta = json.loads((tmp_path / "inline" / "embedded-eval" / "run.json").read_text())
    assert meta["format"] == "trained" and "prompt_layout" not in meta
    inline = [prompt for prompt, _ in ASKED]
    ASKED.clear()
    summary, _ = evaluate(scripted, tmp_path / "card", {}, bench, format="trained", prompt_layout="model-card")
    meta = json.loads((tmp_path / "card" / "embedded-eval" / "run.json").read_text())
    assert meta["prompt_layout"] == "model-card"
    card = [prompt for prompt, _ in ASKED]
    assert "Classify the sound.\n(A) wind. (B) surf. (C) hiss. (D) rumble. " in "".join(inline)
    assert "Classify the sound. Choose the correct option from the following options:\n(A) wind\n(B) surf\n" in \
        "".join(card)
    assert summary["correct"] == 2  # a trained reply's letter selects its option


@pytest.fixture
def mmau_dir(tmp_path):
    """The MMAU fixture with every clip but the last one's."""
    records = mmau_records()
    (tmp_path / "test-mini-audios").mkdir()
    for r in records[:-1]:
        (tmp_path / r["audio_id"]).write_bytes(b"RIFF")
    write_json(tmp_path / "mmau-test-mini.json", records)
    return tmp_path


def test_items_without_audio_count_as_wrong_and_the_official_file_holds_final_answers(scripted, mmau_dir, tmp_path):
    ASKED.clear()
    summary, tally = evaluate(scripted, tmp_path / "out", {}, {"use": "mmau", "data_dir": str(mmau_dir)})
    out = tmp_path / "out" / "mmau"
    assert (summary["items"], summary["missing_audio"], summary["missing"], summary["total"]) == (8, 1, 1, 8)
    assert len(ASKED) == 7 and tally.verdicts.count(("failed", False)) == 1
    assert json.loads((out / "run.json").read_text())["missing_audio"] == ["mmau-fx-08"]
    assert event(tally, "audio files missing; those items count as wrong") == {
        "event": "audio files missing; those items count as wrong", "benchmark": "mmau", "count": 1,
        "first": str(mmau_dir / "test-mini-audios" / "mmau-fx-08.wav")}
    official = json.loads((out / "mmau-predictions.json").read_text())
    assert [r["model_output"] for r in official] == ["(A)"] * 7 + [""]  # the CONCLUSION, as the scorer reads it
    assert set(json.loads((out / "report.json").read_text())) == {"overall", "task", "difficulty", "sub-category",
                                                                  "category"}


def test_the_trained_layout_scores_the_selected_option_text(scripted, mmau_dir, tmp_path):
    summary, _ = evaluate(scripted, tmp_path / "out", {}, {"use": "mmau", "data_dir": str(mmau_dir)},
                          format="trained")
    assert (summary["correct"], summary["total"]) == (5, 8)  # every item whose answer is its first option
    official = json.loads((tmp_path / "out" / "mmau" / "mmau-predictions.json").read_text())
    assert [r["model_output"] for r in official][:2] == ["Man", "C major"]


def test_withheld_answers_are_not_judged(scripted, mmau_dir, tmp_path):
    records = [{**r, "answer": "", "split": "test"} for r in mmau_records()]
    write_json(mmau_dir / "mmau-test.json", records)
    summary, tally = evaluate(scripted, tmp_path / "out", {},
                              {"use": "mmau", "data_dir": str(mmau_dir), "subset": "test"})
    assert summary["scored"] is False and "correct" not in summary
    assert event(tally, "answers are withheld; wrote the official submission file only")["benchmark"] == "mmau"
    assert not [e for e in tally.events if e["event"] == "scored"]
    assert sorted(tally.verdicts) == [("accepted", False)] * 7 + [("failed", False)]
    meta = json.loads((tmp_path / "out" / "mmau" / "run.json").read_text())
    assert meta["summary"]["items"] == 8 and meta["missing_audio"] == ["mmau-fx-08"]


def test_a_predictions_file_cut_before_its_last_newline_is_resumed_and_mended(scripted, tmp_path):
    bench = {"use": "embedded-eval", "items": 4}
    evaluate(scripted, tmp_path, {}, bench)
    predictions = tmp_path / "embedded-eval" / "predictions.jsonl"
    whole = predictions.read_bytes()
    predictions.write_bytes(whole.rstrip(b"\n"))
    ASKED.clear()
    evaluate(scripted, tmp_path, {}, bench)
    assert ASKED == [] and predictions.read_bytes() == whole
    predictions.write_bytes(whole + b'{"id": "embedded-9001-000009", "out')  # torn, as after a crash
    evaluate(scripted, tmp_path, {}, bench)
    assert ASKED == [] and predictions.read_bytes() == whole
    head, rest = whole.split(b"\n", 1)
    predictions.write_bytes(head + b"\nnot json\n" + rest)  # an unreadable line is dropped wherever it is
    evaluate(scripted, tmp_path, {}, bench)
    assert ASKED == [] and predictions.read_bytes() == whole


def test_without_matplotlib_the_reports_are_written_without_plots(scripted, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    summary, tally = evaluate(scripted, tmp_path, {}, {"use": "embedded-eval", "items": 4})
    out = tmp_path / "embedded-eval"
    assert summary["plots"] == [] and summary["total"] == 4
    assert (out / "report.json").is_file() and (out / "report.md").is_file() and not (out / "plots").exists()
    assert event(tally, "matplotlib is not installed (pip install 'afcot[plot]'); no plots written")


def test_a_benchmark_without_items_is_refused(scripted, tmp_path):
    write_json(tmp_path / "mmau-test-mini.json", [])
    with pytest.raises(BadInput, match=r"^mmau: the benchmark has no items$"):
        evaluate(scripted, tmp_path / "out", {}, {"use": "mmau", "data_dir": str(tmp_path)})
    assert not (tmp_path / "out" / "mmau").exists()


def test_run_json_is_indented_and_names_what_was_run(scripted, tmp_path):
    evaluate(scripted, tmp_path, {}, {"use": "embedded-eval", "items": 4})
    text = (tmp_path / "embedded-eval" / "run.json").read_text(encoding="utf-8")
    doc = json.loads(text)
    assert text == json.dumps(doc, indent=2)
    assert list(doc)[:7] == ["fingerprint", "model", "checkpoint", "benchmark", "cot", "format", "repair"]
    assert doc["model"] == {"use": "scripted", "model": None, "letter": "A", "cut": False, "max_batch": 1}
    assert doc["benchmark"] == {"use": "embedded-eval", "items": 4, "seed": 9001, "source": "embedded"}
    assert len(doc["fingerprint"]) == 64


def test_concurrency_bounds_the_items_in_flight_that_the_model_can_batch(scripted, tmp_path):
    BATCHES.clear()
    evaluate(scripted, tmp_path / "one", {"max_batch": 8}, concurrency=1)
    assert BATCHES == [1] * 12
    BATCHES.clear()
    evaluate(scripted, tmp_path / "six", {"max_batch": 8}, concurrency=6)
    assert sum(BATCHES) == 12 and 1 < max(BATCHES) <= 6


def test_cot_off_asks_without_the_suffix_in_either_format(scripted, tmp_path):
    bench = {"use": "embedded-eval", "items": 4}
    for fmt in ("benchmark", "trained"):
        ASKED.clear()
        evaluate(scripted, tmp_path / fmt, {}, bench, cot=False, format=fmt)
        assert len(ASKED) == 4 and not any("<CONCLUSION>" in prompt for prompt, _ in ASKED)
        ASKED.clear()
        evaluate(scripted, tmp_path / f"{fmt}-cot", {}, bench, format=fmt)
        assert all(prompt.endswith("and <CONCLUSION> tags.") for prompt, _ in ASKED)


def test_a_recipe_evaluate_stage_writes_under_the_run_folder(plugins, tmp_path):
    table = {"model": {"use": "embedded-alm"}, "limit": 2, "plots": False,
             "benchmarks": [{"use": "embedded-eval", "items": 4, "label": "held-out"}]}
    parsed = recipe.parse({"run": {"name": "ev", "stages": ["evaluate"]}, "evaluate": table}, plugins,
                          Path("r.toml"))
    result = runner.run(parsed, plugins, tmp_path, show_progress=False)
    assert result["evaluate"]["held-out"]["total"] == 2
    assert json.loads((tmp_path / "evaluate" / "held-out" / "report.json").read_text())["overall"]["total"] == 2
