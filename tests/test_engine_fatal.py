"""A dead in-process engine stops the run at once: exit 1, a clear message, nothing left open marked done."""

import time

import pytest
from afcot_embedded.llm import EmbeddedLlm, EmbeddedLlmConfig
from afcot_qwen.vllm_backend import call_engine

from afcot_core import cli
from afcot_core import plugins as loader
from afcot_core.hookspecs import hookimpl
from afcot_core.teacher import Request

from .conftest import QUICKSTART


class EngineDeadError(RuntimeError):
    """vLLM's exception for an engine core that is gone (``vllm.v1.engine.exceptions``)."""


class DyingConfig(EmbeddedLlmConfig, forbid_unknown_fields=True):
    #: engine calls answered before the engine dies
    lives: int = 3


class DyingLlm(EmbeddedLlm):
    """The embedded LLM behind the vllm backend's engine call, with an engine that dies after ``lives`` calls."""

    model = "dying-llm"
    calls = 0

    def __init__(self, config: DyingConfig) -> None:
        super().__init__(config)
        self.lives = config.lives

    def _engine(self, requests: list[Request]) -> list[str]:
        DyingLlm.calls += 1
        if DyingLlm.calls > self.lives:
            raise EngineDeadError("EngineCore encountered an issue. See stack trace (above) for the root cause.")
        return super().generate(requests)

    def generate(self, requests: list[Request]) -> list[str]:
        return call_engine(self.model, self._engine, requests)


class DyingPlugin:
    @hookimpl
    def register_teacher_llms(self, register):
        register("dying-llm", DyingLlm, DyingConfig, "the embedded LLM on an engine that dies")


@pytest.fixture
def dying_plugins(monkeypatch):
    plugins = loader.load(extra={"dying": DyingPlugin()})
    monkeypatch.setattr(loader, "default", lambda: plugins)
    DyingLlm.calls = 0
    return plugins


def test_a_dead_engine_stops_the_run_at_once_and_marks_nothing_done(dying_plugins, tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["recipe", "run", str(QUICKSTART), "--out", str(out), "--quiet", "--stages", "generate",
            "--set", 'generate.llm={use="dying-llm", lives=3, batching={max_batch=4, max_wait_ms=1}}',
            "--set", "generate.source.items=40", "--set", "generate.shard_size=20",
            "--set", "generate.teacher_retries=5", "--set", "generate.retry_backoff_s=1.0"]
    start = time.perf_counter()
    assert cli.main(argv) == 1
    assert time.perf_counter() - start < 10  # not retried: five retries with backoff would take 30 s
    err = capsys.readouterr().err
    assert "EngineDead: dying-llm: the vLLM engine died (EngineDeadError: EngineCore encountered an issue" in err
    assert ("); the run stops, and running the same command again goes on from the last finished shard\n") in err
    assert DyingLlm.calls == 4  # the call that found the engine dead was the last one
    assert not list((out / "generate").glob("*.done.json")) and not list((out / "generate").glob("shard-*.tar"))
