"""What a run leaves in its process: its log file closed, later events outside it, the environment as before."""

import json
import os
from pathlib import Path

import pytest

from afcot_core import log, runner, weights
from afcot_core import recipe as recipes

from .conftest import QUICKSTART, GonePipe

SMALL = ["generate.source.items=6", "generate.shard_size=3"]


def _open_paths() -> set[str]:
    fds = Path("/proc/self/fd")
    paths = set()
    for fd in fds.iterdir():
        try:
            paths.add(os.readlink(fd))
        except OSError:
            continue
    return paths


@pytest.mark.parametrize("before", [None, "/somewhere/else"])
def test_after_a_run_its_log_is_closed_and_the_environment_is_as_before(tmp_path, plugins, monkeypatch, before):
    if before is None:
        monkeypatch.delenv(weights.RUN_DIR_ENV, raising=False)
    else:
        monkeypatch.setenv(weights.RUN_DIR_ENV, before)
    out = tmp_path / "run"
    runner.run(recipes.load(QUICKSTART, plugins, SMALL), plugins, out, stages=["generate"], show_progress=False)
    run_log = out / "logs" / "run.jsonl"
    events = [json.loads(line)["event"] for line in run_log.read_text().splitlines()]
    assert "stage finished" in events
    assert os.environ.get(weights.RUN_DIR_ENV) == before
    assert str(run_log.resolve()) not in _open_paths()
    log.get().warning("an event after the run")
    assert "an event after the run" not in run_log.read_text()


def test_a_failing_stage_also_closes_the_log_and_restores_the_environment(tmp_path, plugins, monkeypatch):
    monkeypatch.delenv(weights.RUN_DIR_ENV, raising=False)
    recipe = recipes.load(QUICKSTART, plugins, SMALL)
    section = recipe.stages["generate"]

    monkeypatch.setenv("AFCOT_KEPT", "as before")
    monkeypatch.delenv("TOKENIZERS_PARALLELISM", raising=False)

    def boom(ctx):
        assert os.environ[weights.RUN_DIR_ENV] == str((tmp_path / "run").resolve())
        os.environ["TOKENIZERS_PARALLELISM"] = "false"  # what a stage's library might set
        os.environ["AFCOT_KEPT"] = "changed"
        raise RuntimeError("stage exploded")

    monkeypatch.setattr(type(section), "run", lambda self, ctx: boom(ctx))
    with pytest.raises(RuntimeError, match="stage exploded"):
        runner.run(recipe, plugins, tmp_path / "run", stages=["generate"], show_progress=False)
    assert weights.RUN_DIR_ENV not in os.environ and "TOKENIZERS_PARALLELISM" not in os.environ
    assert os.environ["AFCOT_KEPT"] == "as before"
    assert not any(p.endswith("run.jsonl") for p in _open_paths())


def test_events_from_threads_while_the_run_log_closes_are_whole_lines_and_never_fail(tmp_path):
    import threading
    import time

    log.configure(quiet=True)
    errors: list[BaseException] = []
    stop = threading.Event()

    def chatter() -> None:
        try:
            while not stop.is_set():
                log.get().info("tick", payload="x" * 200)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=chatter) for _ in range(3)]
    try:
        for _ in range(5):
            with log.run_log(tmp_path / "run.jsonl", quiet=True):
                if not threads[0].is_alive():
                    for t in threads:
                        t.start()
                time.sleep(0.02)
    finally:
        stop.set()
        for t in threads:
            t.join()
        log.configure()
    assert not errors, repr(errors[0])
    lines = (tmp_path / "run.jsonl").read_text().splitlines()
    assert lines and all(json.loads(line)["event"] == "tick" for line in lines)



def test_a_console_that_went_away_never_stops_the_run_log(tmp_path, monkeypatch):
    monkeypatch.setattr("sys.stderr", GonePipe())
    monkeypatch.setattr(log._ConsoleLogger, "gone", False, raising=False)
    with log.run_log(tmp_path / "run.jsonl"):
        for n in range(3):
            log.get().info("still working", n=n)
    assert [json.loads(line)["n"] for line in (tmp_path / "run.jsonl").read_text().splitlines()] == [0, 1, 2]
