"""The openai backend over real HTTP servers that answer out of order, die, come back or never do.

The servers (``tests/chat_server.py``) serve the embedded teachers, so records are accepted CoTs with
full traces; the recipe is the quickstart's with the Qwen teachers on ``backend = "openai"``.
"""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from afcot_core import cli, runner
from afcot_core import recipe as recipes

from .chat_server import KEY, ChatServer, Latency, embedded_teachers
from .conftest import QUICKSTART, ROOT, afcot

pytest.importorskip("httpx")

ENV = "AFCOT_TEST_OUTAGE_KEY"


def _table(name: str, urls: list[str], model: str, extra: str = "") -> str:
    listed = ", ".join(f'"{u}"' for u in urls)
    return (f'{{use="{name}", backend="openai", base_urls=[{listed}], api_key_env="{ENV}", model="{model}"'
            f'{extra}}}')


def sets(urls: list[str], items: int = 24, **settings: object) -> list[str]:
    """The quickstart's generate stage on the servers at ``urls``: the embedded teachers' sampling, short timings."""
    llm = _table("qwen3", urls, "embedded-llm", ", temperature=0.6, top_p=0.95, top_k=20")
    alm = _table("qwen2.5-omni", urls, "embedded-alm")
    values = {"teacher_timeout_s": 5.0, "retry_backoff_s": 0.05, "shard_size": 6, **settings}
    return [f"generate.llm={llm}", f"generate.alm={alm}", f"generate.source.items={items}",
            *(f"generate.{k}={json.dumps(v)}" for k, v in values.items())]


def outputs(out: Path) -> dict[str, bytes]:
    gen = out / "generate"
    return {p.name: p.read_bytes() for p in sorted([*gen.glob("shard-*.tar"), *gen.glob("rejects-*.jsonl")])}


def run(plugins, urls: list[str], out: Path, **settings: object) -> dict:
    return runner.run(recipes.load(QUICKSTART, plugins, sets(urls, **settings)), plugins, out, stages=["generate"],
                      show_progress=False)["generate"]


class JunkServer(ChatServer):
    """Answers a seeded share of sampled requests with text that is not JSON: the item re-asks (same every run)."""

    def answer(self, body):
        status, payload = super().answer(body)
        seed = body.get("seed")
        if status == 200 and seed is not None and seed % 3 == 0:
            payload["choices"][0]["message"]["content"] = "not json, sorry"
        return status, payload


def test_replies_in_random_order_give_byte_identical_shards(plugins, tmp_path, monkeypatch):
    """Predict and validate run at once, each with JSON re-asks; the trace must not follow the replies' timing."""
    monkeypatch.setenv(ENV, KEY)
    results = {}
    for seed in (1, 2):
        with JunkServer(embedded_teachers(), KEY, latency=Latency(seed, 0.03)) as server:
            results[seed] = run(plugins, [server.url], tmp_path / f"latency-{seed}", items=30)
    assert results[1] == results[2] and results[1]["accepted"] > 5 and results[1]["failed"] == 0
    files = outputs(tmp_path / "latency-1")
    assert files == outputs(tmp_path / "latency-2") and len(files) == 10
    traces = [json.loads(line)["trace"] for p in (tmp_path / "latency-1/generate").glob("rejects-*.jsonl")
              for line in p.read_text().splitlines()]
    assert any(sum("not json" in c["reply"] for c in t) > 1 for t in traces)  # re-asks happened


class ServerProcess:
    """``python -m tests.chat_server`` in a process of its own, killed with SIGKILL and started again on its port."""

    def __init__(self, port: int = 0, latency_seed: int = 3) -> None:
        self.port, self.latency_seed = port, latency_seed
        self.proc: subprocess.Popen | None = None
        self.url = ""

    def start(self) -> "ServerProcess":
        args = [sys.executable, "-m", "tests.chat_server", "--port", str(self.port), "--key", KEY,
                "--latency-seed", str(self.latency_seed), "--max-delay", "0.02"]
        self.proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, text=True,
                                     env={**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'plugins'}"})
        assert self.proc.stdout is not None
        self.url = self.proc.stdout.readline().strip()
        assert self.url.startswith("http://"), self.url
        self.port = int(self.url.rsplit(":", 1)[1].split("/")[0])
        return self

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def _kill_after_first_shard(server: ServerProcess, out: Path, restart_after: float | None) -> threading.Thread:
    def work() -> None:
        deadline = time.time() + 60
        while not list((out / "generate").glob("*.done.json")) and time.time() < deadline:
            time.sleep(0.01)
        server.kill()
        if restart_after is not None:
            time.sleep(restart_after)
            server.start()

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread


@pytest.fixture
def server():
    proc = ServerProcess().start()
    yield proc
    proc.kill()


def test_a_killed_server_restarted_later_costs_nothing(plugins, server, tmp_path, monkeypatch):
    """kill -9 of the only server mid-run, back 3 s later: default retries, exit 0, the fault-free bytes."""
    monkeypatch.setenv(ENV, KEY)
    reference = run(plugins, [server.url], tmp_path / "reference")
    out = tmp_path / "killed"
    killer = _kill_after_first_shard(server, out, restart_after=3.0)
    argv = ["recipe", "run", str(QUICKSTART), "--out", str(out), "--quiet", "--stages", "generate"]
    for s in sets([server.url]):  # teacher_retries and outage_timeout_s at their defaults (3, 900 s)
        argv += ["--set", s]
    start = time.perf_counter()
    assert cli.main(argv) == 0
    killer.join()
    assert time.perf_counter() - start > 3.0  # the run did wait for the server
    assert outputs(out) == outputs(tmp_path / "reference") and reference["failed"] == 0
    events = [json.loads(line) for line in (out / "logs/run.jsonl").read_text().splitlines()]
    said = [e["event"] for e in events]
    assert "waiting for servers: 0 of 1 up" in said and "servers back: 1 of 1 up" in said


def test_a_server_that_never_comes_back_fails_the_run_after_the_outage_budget(plugins, server, tmp_path,
                                                                              monkeypatch):
    monkeypatch.setenv(ENV, KEY)
    run(plugins, [server.url], tmp_path / "reference")
    out = tmp_path / "gone"
    killer = _kill_after_first_shard(server, out, restart_after=None)
    argv = ["recipe", "run", str(QUICKSTART), "--out", str(out), "--quiet", "--stages", "generate"]
    for s in sets([server.url], outage_timeout_s=1.5):
        argv += ["--set", s]
    start = time.perf_counter()
    result = afcot(*argv, timeout=60)  # its own process: a run that waited for ever would fail here
    took = time.perf_counter() - start
    killer.join()
    assert result.returncode == 1, result.stderr
    err = result.stderr
    rejects = [json.loads(line) for p in (out / "generate").glob("rejects-*.jsonl")
               for line in p.read_text().splitlines()]
    failed = [r for r in rejects if r["verdict"] == "failed"]
    assert failed and f"{len(failed)} items failed" in err and all(r["item"]["id"] in err for r in failed[:20])
    assert all("no server up for 1.5 s (0 of 1 up" in r["reason"] for r in failed)
    assert 1.5 < took < 40
    server.start()  # the server is back: the same command completes the data
    assert cli.main(argv) == 0
    assert outputs(out) == outputs(tmp_path / "reference")


def test_a_dead_server_among_two_leaves_the_rotation_and_is_probed_not_retried(plugins, tmp_path, monkeypatch):
    monkeypatch.setenv(ENV, KEY)
    dead = "http://127.0.0.1:9/v1"  # the discard port: connection refused
    with ChatServer(embedded_teachers(), KEY, latency=Latency(0, 0.01)) as good:
        counts = run(plugins, [dead, good.url], tmp_path / "one-dead", items=12)
        reference = run(plugins, [good.url], tmp_path / "reference", items=12)
    assert counts == reference and counts["failed"] == 0
    assert outputs(tmp_path / "one-dead") == outputs(tmp_path / "reference")
    events = [json.loads(line) for line in (tmp_path / "one-dead/logs/run.jsonl").read_text().splitlines()]
    out_of_rotation = [e for e in events if e["event"].startswith("server out of rotation")]
    assert len(out_of_rotation) == 2 and all(e["server"] == dead for e in out_of_rotation)  # once per teacher


def test_random_kills_of_afcot_over_a_random_order_server_then_a_rerun_equal_an_uninterrupted_run(
        plugins, server, tmp_path, monkeypatch, kills=4):
    """tests/test_sigkill.py's contract, with the teachers on the out-of-order server."""
    import random

    monkeypatch.setenv(ENV, KEY)
    config = sets([server.url], items=36, shard_size=3, concurrency=8)
    runner.run(recipes.load(QUICKSTART, plugins, config), plugins, tmp_path / "reference", stages=["generate"],
               show_progress=False)
    out = tmp_path / "killed"
    args = [sys.executable, "-m", "afcot_core.cli", "recipe", "run", str(QUICKSTART), "--out", str(out), "--quiet",
            "--stages", "generate", *(x for s in config for x in ("--set", s))]
    rng = random.Random(5)
    killed = 0
    for _ in range(kills):
        before = len(list((out / "generate").glob("*.done.json")))
        proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy())
        deadline = time.time() + 30
        while (len(list((out / "generate").glob("*.done.json"))) <= before and proc.poll() is None
               and time.time() < deadline):
            time.sleep(0.01)
        time.sleep(rng.uniform(0, 0.15))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            killed += 1
        proc.wait()
    done = len(list((out / "generate").glob("*.done.json")))
    assert killed == kills and 0 < done < 12, f"{killed} kills, {done} of 12 shards done before the last run"
    assert cli.main(args[3:]) == 0
    assert outputs(out) == outputs(tmp_path / "reference")
    assert not list(out.rglob("*.tmp"))
