"""The Qwen teachers' ``openai`` backend against real HTTP servers on loopback that serve tiny models and misbehave."""

import asyncio
import json
import tarfile
import time
from pathlib import Path

import msgspec
import numpy as np
import pytest

from afcot_core import recipe as recipes
from afcot_core import runner
from afcot_core.audio import audio_ref_from_wave
from afcot_core.errors import BadInput, TeacherError
from afcot_core.teacher import Request, RetryPolicy

from .chat_server import FAULTS, ChatServer, Faults, Latency
from .conftest import QUICKSTART
from .tiny_models import save_omni_thinker, save_qwen3

pytest.importorskip("transformers")
pytest.importorskip("httpx")

KEY = "sk-test-5f0c2b9e-never-in-outputs"
ENV = "AFCOT_TEST_CHAT_KEY"
LLM = {"model": "tiny-qwen3", "max_new_tokens": 6}
ALM = {"model": "tiny-omni", "max_new_tokens": 6}


@pytest.fixture(scope="module")
def served(plugins, tmp_path_factory):
    """The teachers a server runs: the transformers backend on tiny random weights (Qwen3 samples, Omni greedy)."""
    root = tmp_path_factory.mktemp("served")
    qwen3, omni = save_qwen3(root / "qwen3"), save_omni_thinker(root / "omni")
    common = {"device": "cpu", "dtype": "float32"}
    return {"tiny-qwen3": _build(plugins, "teacher_llm", "qwen3", model=str(qwen3), **common,
                                 max_new_tokens=LLM["max_new_tokens"]),
            "tiny-omni": _build(plugins, "teacher_alm", "qwen2.5-omni", model=str(omni), **common,
                                max_new_tokens=ALM["max_new_tokens"])}


def _build(plugins, role, name, **config):
    reg = plugins.registry(role).get(name)
    return reg.build(msgspec.convert(config, reg.config))


def _table(name, urls, model):
    """The inline TOML table of a teacher on the servers at ``urls``."""
    urls_list = ", ".join(f'"{u}"' for u in urls)
    return (f'{{use="{name}", backend="openai", base_urls=[{urls_list}], api_key_env="{ENV}", '
            f'model="{model["model"]}", max_new_tokens={model["max_new_tokens"]}}}')


def _generate(plugins, urls, out: Path) -> dict:
    sets = [f"generate.llm={_table('qwen3', urls, LLM)}", f"generate.alm={_table('qwen2.5-omni', urls, ALM)}",
            "generate.source.items=6", "generate.json_retries=0", "generate.cache=false",
            "generate.teacher_timeout_s=1.0", "generate.teacher_retries=8", "generate.retry_backoff_s=0.05"]
    return runner.run(recipes.load(QUICKSTART, plugins, sets), plugins, out, stages=["generate"],
                      show_progress=False)["generate"]


def _records(folder: Path) -> list[dict]:
    """Every record the run wrote (accepted ones in the shards, the others in the rejects files), by item id.

    ``codes`` are compared as a set: concurrent steps of one item note them in the order they finish.
    """
    records = []
    for shard in sorted(folder.glob("shard-*.tar")):
        with tarfile.open(shard) as tar:
            records += [json.load(tar.extractfile(m)) for m in tar.getmembers() if m.name.endswith(".json")]
    for rejects in sorted(folder.glob("rejects-*.jsonl")):
        records += [json.loads(line) for line in rejects.read_text().splitlines() if line.strip()]
    for record in records:
        record["codes"] = sorted(record.get("codes") or [])
    return sorted(records, key=lambda r: r["item"]["id"])


def _request_identity(body):
    return msgspec.json.encode([body["model"], body["messages"], body.get("seed")])


def test_generate_over_faulty_servers_equals_fault_free(plugins, served, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(ENV, KEY)
    faults = Faults(seed=7)  # a seed whose 20% puts every kind of fault in the first 12 requests
    with (ChatServer(served, KEY, faults, latency=Latency(1, 0.02)) as a,
          ChatServer(served, KEY, faults, latency=Latency(2, 0.02)) as b):  # replies out of order too
        expected = _generate(plugins, [a.url, b.url], tmp_path / "clean")
        clean = a.answered + b.answered
        a.answered, b.answered = [], []
        faults.rate = 0.2  # the same servers (so the same recipe), now misbehaving
        counts = _generate(plugins, [a.url, b.url], tmp_path / "faulty")
        answered = a.answered + b.answered
    assert counts == expected and counts["failed"] == 0 and sum(counts[k] for k in
                                                                 ("accepted", "rejected", "failed")) == 6
    assert all(faults.count[kind] >= 1 for kind in FAULTS), faults.count  # every kind of fault happened
    assert a.answered and b.answered  # round-robin: both servers served
    # no request lost: every request of the fault-free run was answered, and nothing else was asked
    assert {_request_identity(x) for x in answered} == {_request_identity(x) for x in clean}
    assert _records(tmp_path / "faulty" / "generate") == _records(tmp_path / "clean" / "generate")
    assert len(_records(tmp_path / "clean" / "generate")) == 6
    out = capsys.readouterr()
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path
    assert KEY not in out.out + out.err


def _embedded_llm(plugins, urls, policy, **config):
    """The openai ``qwen3`` teacher asking the test servers at ``urls`` for the embedded LLM, with ``policy``."""
    llm = _build(plugins, "teacher_llm", "qwen3", backend="openai", base_urls=urls, api_key_env=ENV,
                 model="embedded-llm", max_new_tokens=8, **config)
    llm.use_retry(policy)
    return llm


def _teacher(plugins, role, name, url, model, backoff_s=1.0):
    teacher = _build(plugins, role, name, backend="openai", base_urls=[url], api_key_env=ENV, model=model["model"],
                     max_new_tokens=model["max_new_tokens"])
    teacher.use_retry(RetryPolicy(timeout_s=5.0, retries=3, backoff_s=backoff_s))
    return teacher


def test_retry_after_is_honoured_and_the_reply_is_the_model_s(plugins, served, monkeypatch):
    monkeypatch.setenv(ENV, KEY)
    rng = np.random.default_rng(0)
    clip = audio_ref_from_wave((0.3 * rng.standard_normal(16000)).astype(np.float32), 16000)
    with ChatServer(served, KEY, Faults(script=["429"]), retry_after="1") as server:
        alm = _teacher(plugins, "teacher_alm", "qwen2.5-omni", server.url, ALM, backoff_s=0.0)
        start = time.perf_counter()
        reply = asyncio.run(alm.ask("Describe.", clip))
        assert time.perf_counter() - start >= 1.0  # waited as the 429 asked, not the (zero) backoff
    assert server.faults.count["429"] == 1 and len(server.answered) == 1
    assert reply.text == served["tiny-omni"].generate([Request("Describe.", clip)])[0]


def test_wrong_key_and_unset_key_fail_clearly_without_the_key(plugins, served, monkeypatch):
    with ChatServer(served, "another-key") as server:
        monkeypatch.setenv(ENV, KEY)
        llm = _teacher(plugins, "teacher_llm", "qwen3", server.url, LLM)
        with pytest.raises(TeacherError) as err:
            asyncio.run(llm.ask("hi"))
        assert "401" in str(err.value) and KEY not in str(err.value)
        monkeypatch.delenv(ENV)
        with pytest.raises(BadInput, match=ENV):
            _teacher(plugins, "teacher_llm", "qwen3", server.url, LLM)


def test_identical_requests_in_flight_are_sent_once(plugins, served, monkeypatch):
    monkeypatch.setenv(ENV, KEY)
    with ChatServer(served, KEY) as server:
        alm = _teacher(plugins, "teacher_alm", "qwen2.5-omni", server.url, ALM)

        async def ask_all():  # greedy: the per-item seeds do not make requests different
            return await asyncio.gather(*(alm.ask("What does a dog bark sound like?", seed=s) for s in range(11)))

        replies = asyncio.run(ask_all())
    assert len(server.answered) == 1 and len({r.text for r in replies}) == 1


def _ask_all(teacher, requests):
    async def go():
        return await asyncio.gather(*(teacher.ask(r.prompt, r.audio, r.prefix, seed=r.seed) for r in requests))

    return asyncio.run(go())


def test_requests_go_round_robin_over_the_servers(plugins, served, monkeypatch):
    monkeypatch.setenv(ENV, KEY)
    with ChatServer(served, KEY) as a, ChatServer(served, KEY) as b:
        llm = _build(plugins, "teacher_llm", "qwen3", backend="openai", base_urls=[a.url, b.url], api_key_env=ENV,
                     model=LLM["model"], max_new_tokens=LLM["max_new_tokens"])
        for i in range(8):
            asyncio.run(llm.ask(f"question {i}", seed=i))
    assert len(a.answered) == len(b.answered) == 4


@pytest.mark.parametrize(("limit", "peak"), [(0, 4), (1, 1)])
def test_the_per_server_token_limit_bounds_what_is_in_flight(plugins, served, monkeypatch, limit, peak):
    monkeypatch.setenv(ENV, KEY)
    with ChatServer(served, KEY, latency=Latency(0, 0.1)) as server:
        llm = _build(plugins, "teacher_llm", "qwen3", backend="openai", base_urls=[server.url], api_key_env=ENV,
                     model=LLM["model"], max_new_tokens=LLM["max_new_tokens"])
        cost = llm.cost(Request("question 0"))
        llm.config.max_tokens_per_server = limit * cost  # room for one request when the limit is set
        _ask_all(llm, [Request(f"question {i}", seed=i) for i in range(4)])
    assert server.peak_active == peak


def test_a_sampled_request_carries_its_own_seed_and_a_greedy_one_none(plugins, served, monkeypatch):
    monkeypatch.setenv(ENV, KEY)
    with ChatServer(served, KEY) as server:
        llm = _teacher(plugins, "teacher_llm", "qwen3", server.url, LLM)
        alm = _teacher(plugins, "teacher_alm", "qwen2.5-omni", server.url, ALM)
        replies = [asyncio.run(llm.ask("hi", seed=s)).text for s in (11, 12)]
        asyncio.run(alm.ask("hi", seed=13))
    assert [b.get("seed") for b in server.answered] == [11, 12, None]
    assert all(b["skip_special_tokens"] is False for b in server.answered)
    local = served["tiny-qwen3"]
    assert replies == [local.generate([Request("hi", seed=s)])[0] for s in (11, 12)]  # the in-process samples


def test_the_reply_is_read_after_the_last_think_whatever_the_tokenizer_marks_special(plugins, tmp_path, monkeypatch):
    from .test_qwen import _scripted_qwen3

    monkeypatch.setenv(ENV, KEY)
    folder = _scripted_qwen3(tmp_path / "scripted", "<think>ab</think>xy<|im_end|>")  # </think> is special here
    local = _build(plugins, "teacher_llm", "qwen3", model=str(folder), device="cpu", dtype="float32",
                   max_new_tokens=12, temperature=0.0)
    with ChatServer({"scripted": local}, KEY) as server:
        remote = _teacher(plugins, "teacher_llm", "qwen3", server.url, {"model": "scripted", "max_new_tokens": 12})
        remote.config.temperature = 0.0
        assert asyncio.run(remote.ask("hi")).text == "xy" == local.generate([Request("hi")])[0]


@pytest.mark.parametrize("thinking", [False, True])
def test_a_prefixed_request_is_the_in_process_prompt_token_for_token(plugins, served, monkeypatch, thinking):
    from afcot_qwen.prompts import qwen3_prompt

    monkeypatch.setenv(ENV, KEY)
    local = served["tiny-qwen3"]
    request = Request("Why is the sky blue?", prefix="Because")
    with ChatServer(served, KEY) as server:
        llm = _teacher(plugins, "teacher_llm", "qwen3", server.url, LLM)
        llm.config.enable_thinking = local.config.enable_thinking = llm.enable_thinking = thinking
        try:
            asyncio.run(llm.ask(request.prompt, prefix=request.prefix, seed=1))
        finally:
            local.config.enable_thinking = True
    expected = local.tok(qwen3_prompt(local.tok, request, thinking), add_special_tokens=False)["input_ids"]
    assert server.prompt_ids == [expected]


def test_extra_body_goes_in_every_request_and_only_reply_changing_fields_are_fingerprinted(plugins, served,
                                                                                            monkeypatch):
    from afcot_qwen.config import QwenLlmConfig

    from afcot_core.recipe import component

    monkeypatch.setenv(ENV, KEY)
    table = {"use": "qwen3", "backend": "openai", "base_urls": ["http://127.0.0.1:9/v1"]}
    extras = ({}, {"priority": 5}, {"repetition_penalty": 1.1}, {"repetition_penalty": 1.1, "user": "x"})
    identity = [component({**table, "extra_body": extra}, "teacher_llm", "generate.llm", plugins).identity_table()
                for extra in extras]
    assert identity[0] == identity[1] != identity[2] == identity[3]
    with ChatServer(served, KEY) as server:
        llm = _teacher(plugins, "teacher_llm", "qwen3", server.url, LLM)
        llm.config.extra_body, llm.config.extra_run_body = {"repetition_penalty": 1.0}, {"priority": 2}
        asyncio.run(llm.ask("hi", seed=1))
    assert server.answered[0]["repetition_penalty"] == 1.0 and server.answered[0]["priority"] == 2
    with pytest.raises(ValueError, match="extra_body may not set seed"):
        QwenLlmConfig(backend="openai", base_urls=["http://x/v1"], extra_body={"seed": 3})


def test_an_error_shows_the_key_as_stars_and_without_a_key_the_server_s_own_words(plugins, monkeypatch):
    """The server's 401 text echoes the Authorization header: the key reads ``***``; with no key nothing is replaced."""
    monkeypatch.setenv(ENV, KEY)
    with ChatServer({}, "another-key") as server:
        keyed = _teacher(plugins, "teacher_llm", "qwen3", server.url, LLM)
        keyless = _build(plugins, "teacher_llm", "qwen3", backend="openai", base_urls=[server.url],
                         model=LLM["model"], max_new_tokens=LLM["max_new_tokens"])
        messages = []
        for teacher in (keyed, keyless):
            with pytest.raises(TeacherError) as err:
                asyncio.run(teacher.ask("hi"))
            messages.append(str(err.value))
    assert "bad key: Bearer ***" in messages[0] and KEY not in messages[0]
    assert f"{server.url} answered HTTP 401: " in messages[1] and "bad key: None" in messages[1]


def test_retry_after_reads_delta_seconds_and_http_dates_never_below_zero():
    from email.utils import formatdate

    from afcot_qwen.openai_backend import retry_after

    assert retry_after("0.5") == 0.5 and retry_after("0") == 0.0 and retry_after("-3") == 0.0
    assert 28 < retry_after(formatdate(time.time() + 30, usegmt=True)) <= 30
    assert retry_after(formatdate(time.time() - 30, usegmt=True)) == 0.0
    assert retry_after(None) is None and retry_after("") is None and retry_after("soon") is None


def test_a_teacher_configured_without_thinking_prefixes_as_the_in_process_prompt_does(plugins, served, monkeypatch):
    from afcot_qwen.prompts import qwen3_prompt

    monkeypatch.setenv(ENV, KEY)
    local = served["tiny-qwen3"]
    request = Request("Why is the sky blue?", prefix="Because")
    with ChatServer(served, KEY) as server:
        llm = _build(plugins, "teacher_llm", "qwen3", backend="openai", base_urls=[server.url], api_key_env=ENV,
                     model=LLM["model"], max_new_tokens=LLM["max_new_tokens"], enable_thinking=False)
        local.config.enable_thinking = False
        try:
            asyncio.run(llm.ask(request.prompt, prefix=request.prefix, seed=1))
        finally:
            local.config.enable_thinking = True
    expected = local.tok(qwen3_prompt(local.tok, request, False), add_special_tokens=False)["input_ids"]
    assert server.prompt_ids == [expected]


def test_requests_share_evenly_over_the_servers_that_are_up(plugins, monkeypatch):
    """Two dead servers next to each other among four: the two up ones take turns, neither takes the dead ones'."""
    from .chat_server import embedded_teachers

    monkeypatch.setenv(ENV, KEY)
    dead = ["http://127.0.0.1:9/v1", "http://127.0.0.1:7/v1"]  # discard and echo ports: connection refused
    with ChatServer(embedded_teachers(), KEY) as a, ChatServer(embedded_teachers(), KEY) as b:
        llm = _build(plugins, "teacher_llm", "qwen3", backend="openai", base_urls=[a.url, *dead, b.url],
                     api_key_env=ENV, model="embedded-llm", max_new_tokens=8, temperature=0.6, top_p=0.95, top_k=20)

        async def one_loop() -> None:  # one event loop: the dead servers stay out of the rotation once found
            for i in range(12):
                await llm.ask(f"question {i}", seed=i)

        asyncio.run(one_loop())
    assert sorted([len(a.answered), len(b.answered)]) == [6, 6]


def test_requests_waiting_for_a_dead_server_fail_after_the_outage_budget_counted_from_the_outage(plugins,
                                                                                                 monkeypatch):
    monkeypatch.setenv(ENV, KEY)
    llm = _build(plugins, "teacher_llm", "qwen3", backend="openai", base_urls=["http://127.0.0.1:9/v1"],
                 api_key_env=ENV, model="embedded-llm", max_new_tokens=8)
    llm.use_retry(RetryPolicy(timeout_s=2.0, retries=3, backoff_s=0.05, outage_s=0.6))

    async def both() -> list[object]:  # the second request waits from the same outage, not from its own start
        first = asyncio.ensure_future(llm.ask("one", seed=1))
        await asyncio.sleep(0.5)
        return await asyncio.gather(first, llm.ask("two", seed=2), return_exceptions=True)

    start = time.perf_counter()
    errors = asyncio.run(asyncio.wait_for(both(), 5))  # a budget that restarts would wait for ever
    took = time.perf_counter() - start
    assert all(isinstance(e, TeacherError) and "no server up for 0.6 s (0 of 1 up" in str(e) for e in errors)
    assert 0.6 <= took < 1.0, took  # counted from its own start, the second would fail at 1.1 s


def test_a_sampled_request_without_a_seed_carries_the_config_s(plugins, monkeypatch):
    monkeypatch.setenv(ENV, KEY)
    llm = _build(plugins, "teacher_llm", "qwen3", backend="openai", base_urls=["http://127.0.0.1:9/v1"],
                 api_key_env=ENV, model="m", seed=41, temperature=0.6)
    assert llm.body(Request("hi"))["seed"] == 41 and llm.body(Request("hi", seed=3))["seed"] == 3


def test_a_request_costs_its_text_over_four_its_audio_at_25_tokens_a_second_up_to_30_s_and_its_reply(plugins):
    llm = _build(plugins, "teacher_llm", "qwen3", backend="openai", base_urls=["http://127.0.0.1:9/v1"],
                 model="m", max_new_tokens=100)
    alm = _build(plugins, "teacher_alm", "qwen2.5-omni", backend="openai", base_urls=["http://127.0.0.1:9/v1"],
                 model="m", max_new_tokens=10, system_prompt="s" * 8)
    assert llm.cost(Request("p" * 40, prefix="x" * 6)) == 46 // 4 + 100
    clip = audio_ref_from_wave(np.zeros(16000 * 2, dtype=np.float32), 16000)
    long = audio_ref_from_wave(np.zeros(16000 * 31, dtype=np.float32), 16000)
    assert alm.cost(Request("p" * 8)) == 4 + 10
    assert alm.cost(Request("p" * 8, clip)) == 4 + 50 + 10 and alm.cost(Request("p" * 8, long)) == 4 + 750 + 10


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_server_that_goes_down_is_probed_with_backoff_and_rejoins_the_rotation(plugins, monkeypatch):
    """One of two servers refuses connections: out of the rotation (logged), probed at doubling intervals while the
    other answers, back in the rotation once it answers; with every server down, the outage is logged and ends."""
    from structlog.testing import capture_logs

    from .chat_server import embedded_teachers

    monkeypatch.setenv(ENV, KEY)
    port = _free_port()
    late = f"http://127.0.0.1:{port}/v1"
    sleeps: list[float] = []
    real_sleep = asyncio.sleep

    async def recorded(delay, *args, **kwargs):
        sleeps.append(round(delay, 4))
        return await real_sleep(min(delay, 0.02), *args, **kwargs)

    monkeypatch.setattr(asyncio, "sleep", recorded)
    with ChatServer(embedded_teachers(), KEY) as a:
        llm = _embedded_llm(plugins, [a.url, late],
                            RetryPolicy(timeout_s=2.0, retries=3, backoff_s=0.05, outage_s=30.0))
        servers = llm.servers

        async def scenario() -> list[str]:
            replies = [await llm.ask(f"question {i}", seed=i) for i in range(2)]  # the second finds `late` down
            assert servers.downs == 1 and [s.up for s in servers.servers] == [True, False]
            while len(sleeps) < 5:  # the watch probes `late` and waits longer each time
                await real_sleep(0.01)
            with ChatServer(embedded_teachers(), KEY, port=port) as b:
                for _ in range(500):
                    if servers.ups:
                        break
                    await real_sleep(0.01)
                assert servers.ups == 1 and [s.up for s in servers.servers] == [True, True]
                replies += [await llm.ask(f"again {i}", seed=i) for i in range(4)]
                assert len(b.answered) == 2  # it takes its turns again
            return replies

        with capture_logs() as logs:
            assert len(asyncio.run(scenario())) == 6
    assert sleeps[:5] == [0.05, 0.1, 0.2, 0.4, 0.8]
    events = [(e["event"], e.get("server")) for e in logs if e.get("log_level") == "warning"]
    assert events[0] == ("server out of rotation: 1 of 2 up", late)
    assert "connection" in logs[0]["problem"] and logs[0]["model"] == "embedded-llm"
    assert ("servers back: 2 of 2 up", late) not in events  # back from no outage: nothing to announce
    assert servers._outage_since is None


def test_when_every_server_is_down_requests_wait_and_resume_when_one_is_back(plugins, monkeypatch):
    from structlog.testing import capture_logs

    from .chat_server import embedded_teachers

    monkeypatch.setenv(ENV, KEY)
    port = _free_port()
    url = f"http://127.0.0.1:{port}/v1"
    llm = _embedded_llm(plugins, [url], RetryPolicy(timeout_s=2.0, retries=0, backoff_s=0.05, outage_s=30.0))

    async def scenario() -> str:
        waiting = asyncio.ensure_future(llm.ask("question", seed=1))
        await asyncio.sleep(0.4)
        assert not waiting.done() and llm.servers._outage_since is not None  # waits: retries=0 spends nothing
        assert not llm.servers._any_up.is_set()  # the waiting requests sleep on it, no busy loop
        with ChatServer(embedded_teachers(), KEY, port=port):
            return await asyncio.wait_for(waiting, 10)

    started = time.monotonic()
    with capture_logs() as logs:
        assert asyncio.run(scenario())
    took = time.monotonic() - started
    warnings = [e for e in logs if e.get("log_level") == "warning"]
    assert [e["event"] for e in warnings] == ["waiting for servers: 0 of 1 up", "servers back: 1 of 1 up"]
    assert warnings[0]["outage_timeout_s"] == 30.0 and warnings[0]["problem"] == "connection: ConnectError"
    assert [e["model"] for e in warnings] == ["embedded-llm", "embedded-llm"]
    assert warnings[1]["server"] == url and 0.3 <= warnings[1]["outage_s"] <= took + 0.05
    assert llm.servers.downs == llm.servers.ups == 1 and llm.servers._outage_since is None


def test_a_probe_reads_a_5xx_as_down_anything_else_as_up_and_gives_up_within_the_timeout(plugins, monkeypatch):
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    status = {"code": 200, "delay": 0.0}

    class Models(BaseHTTPRequestHandler):
        def do_GET(self):
            time.sleep(status["delay"])
            self.send_response(status["code"])
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    http = ThreadingHTTPServer(("127.0.0.1", 0), Models)
    http.daemon_threads = True
    threading.Thread(target=http.serve_forever, daemon=True).start()
    try:
        llm = _build(plugins, "teacher_llm", "qwen3", backend="openai",
                     base_urls=[f"http://127.0.0.1:{http.server_address[1]}/v1"], model="m")
        servers = llm.servers

        async def probe() -> bool:
            servers._bind(RetryPolicy(timeout_s=0.3, retries=0, backoff_s=0.05, outage_s=5.0))
            return await servers._probe(servers.servers[0])

        seen = {}
        for code in (200, 404, 499, 500, 503):
            status["code"] = code
            seen[code] = asyncio.run(probe())
        assert seen == {200: True, 404: True, 499: True, 500: False, 503: False}
        status.update(code=200, delay=2.0)
        start = time.perf_counter()
        assert asyncio.run(probe()) is False and time.perf_counter() - start < 1.5  # the call's timeout, not 5 s
    finally:
        http.shutdown()
        http.server_close()


def test_a_dropped_connection_to_a_server_that_still_answers_is_retried_without_leaving_the_rotation(plugins,
                                                                                                     monkeypatch):
    from .chat_server import embedded_teachers

    monkeypatch.setenv(ENV, KEY)
    with ChatServer(embedded_teachers(), KEY, faults=Faults(script=["drop", "drop", "drop"])) as a:
        llm = _embedded_llm(plugins, [a.url], RetryPolicy(timeout_s=2.0, retries=1, backoff_s=0.01, outage_s=5.0))
        with pytest.raises(TeacherError, match="after 2 tries"):  # the server is up: the request's tries count
            asyncio.run(llm.ask("question", seed=1))
        assert asyncio.run(llm.ask("question", seed=1))  # the third drop costs one retry, the fourth call answers
    assert llm.servers.downs == 0 and llm.servers.retried == {"connection": 3}



def test_a_reply_later_than_timeout_s_is_abandoned_and_tried_again_as_a_timeout(plugins, monkeypatch):
    """The server answers its probe but not the request in time: each call is given up at timeout_s, counted as a
    timeout, and the server stays in the rotation."""
    from .chat_server import embedded_teachers

    monkeypatch.setenv(ENV, KEY)
    with ChatServer(embedded_teachers(), KEY, faults=Faults(script=["slow", "slow"]), slow_s=1.5) as a:
        llm = _embedded_llm(plugins, [a.url], RetryPolicy(timeout_s=0.3, retries=1, backoff_s=0.01, outage_s=5.0))
        started = time.monotonic()
        with pytest.raises(TeacherError, match=r"embedded-llm: no reply within 0.3 s \(after 2 tries"):
            asyncio.run(llm.ask("question", seed=1))
        assert time.monotonic() - started < 1.4  # two calls of 0.3 s, neither waited out
    assert llm.servers.downs == 0 and llm.servers.retried == {"timeout": 2}


def test_retried_replies_wait_as_the_server_asks_or_back_off_and_are_counted_by_kind(plugins, monkeypatch):
    """A 429 waits its Retry-After; a 500 and a dropped connection wait the policy's delay of that retry (doubling
    from backoff_s, with jitter); the teacher counts each kind."""
    from .chat_server import embedded_teachers

    monkeypatch.setenv(ENV, KEY)
    sleeps: list[float] = []
    real_sleep = asyncio.sleep

    async def recorded(delay, *args, **kwargs):
        sleeps.append(delay)
        return await real_sleep(0, *args, **kwargs)

    with ChatServer(embedded_teachers(), KEY, faults=Faults(script=["429", "500", "drop"]), retry_after="7") as a:
        llm = _embedded_llm(plugins, [a.url], RetryPolicy(timeout_s=2.0, retries=3, backoff_s=0.4, outage_s=5.0))
        monkeypatch.setattr(asyncio, "sleep", recorded)
        assert asyncio.run(llm.ask("question", seed=1))
    assert sleeps[0] == 7.0 and 0.4 <= sleeps[1] <= 0.8 and 0.8 <= sleeps[2] <= 1.6 and len(sleeps) == 3
    assert llm.servers.retried == {"429": 1, "500": 1, "connection": 1} and llm.servers.downs == 0


def test_a_reply_that_is_not_json_is_retried_then_named(plugins, monkeypatch):
    from .chat_server import embedded_teachers

    monkeypatch.setenv(ENV, KEY)
    with ChatServer(embedded_teachers(), KEY, faults=Faults(script=["not json"] * 3)) as a:
        llm = _embedded_llm(plugins, [a.url], RetryPolicy(timeout_s=2.0, retries=1, backoff_s=0.01, outage_s=5.0))
        with pytest.raises(TeacherError, match=r"^embedded-llm: the reply is not JSON \(after 2 tries over 1 server"):
            asyncio.run(llm.ask("question", seed=1))
        assert asyncio.run(llm.ask("question", seed=1))  # one more page, then the answer
    assert llm.servers.retried == {"bad reply": 3} and llm.servers.downs == 0


def test_a_reply_with_null_content_is_empty_and_one_without_choices_is_refused(plugins, monkeypatch):
    from .chat_server import embedded_teachers

    monkeypatch.setenv(ENV, KEY)
    with ChatServer(embedded_teachers(), KEY, faults=Faults(script=["null content", "no choices"])) as a:
        llm = _build(plugins, "teacher_llm", "qwen3", backend="openai", base_urls=[a.url], api_key_env=ENV,
                     model="embedded-llm", max_new_tokens=8)
        assert asyncio.run(llm.ask("question", seed=1)).text == ""
        with pytest.raises(TeacherError, match=r"^embedded-llm: a chat completion without choices\[0\]\.message$"):
            asyncio.run(llm.ask("question", seed=2))


def test_a_server_answering_503_is_an_outage_waited_out_not_a_failed_request(plugins, monkeypatch):
    """A gateway answers 503 to requests and probes alike while its engine is gone: the request waits for the
    server (no try spent), then is answered."""
    from .chat_server import embedded_teachers

    monkeypatch.setenv(ENV, KEY)
    with ChatServer(embedded_teachers(), KEY) as a:
        a.unavailable = True
        llm = _embedded_llm(plugins, [a.url], RetryPolicy(timeout_s=2.0, retries=1, backoff_s=0.05, outage_s=30.0))

        async def scenario():
            waiting = asyncio.ensure_future(llm.ask("question", seed=1))
            await asyncio.sleep(0.5)
            assert not waiting.done()
            a.unavailable = False
            return await asyncio.wait_for(waiting, 10)

        assert asyncio.run(scenario())
    assert llm.servers.downs == llm.servers.ups == 1 and llm.servers.retried == {"503": 1}

def test_a_dead_server_costs_a_request_none_of_its_retries(plugins, monkeypatch):
    from .chat_server import embedded_teachers

    monkeypatch.setenv(ENV, KEY)
    with ChatServer(embedded_teachers(), KEY) as a:
        llm = _build(plugins, "teacher_llm", "qwen3", backend="openai", base_urls=["http://127.0.0.1:9/v1", a.url],
                     api_key_env=ENV, model="embedded-llm", max_new_tokens=8)
        llm.use_retry(RetryPolicy(timeout_s=2.0, retries=0, backoff_s=0.01, outage_s=5.0))

        async def four() -> list[str]:
            return [await llm.ask(f"question {i}", seed=i) for i in range(4)]

        assert len(asyncio.run(four())) == 4  # retries = 0, yet the one that met the dead server is answered
    assert llm.servers.downs == 1 and len(a.answered) == 4


def test_a_server_that_no_longer_answers_even_its_probe_leaves_the_rotation_on_a_timeout(plugins, monkeypatch):
    """A hung server (connections accepted, nothing ever answered): the request's timeout, then the failed probe,
    take the server out; the request goes on to the other server without spending a try (retries = 0)."""
    import socket

    from .chat_server import embedded_teachers

    monkeypatch.setenv(ENV, KEY)
    hung = socket.create_server(("127.0.0.1", 0), backlog=16)  # listens, never accepts: every read times out
    try:
        with ChatServer(embedded_teachers(), KEY) as b:
            urls = [f"http://127.0.0.1:{hung.getsockname()[1]}/v1", b.url]  # the first request's turn is the hung one
            llm = _embedded_llm(plugins, urls, RetryPolicy(timeout_s=0.3, retries=0, backoff_s=0.05, outage_s=5.0))
            assert asyncio.run(llm.ask("question", seed=1))
            assert len(b.answered) == 1
    finally:
        hung.close()
    assert llm.servers.downs == 1 and llm.servers.retried == {"timeout": 1}
