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

from .chat_server import FAULTS, ChatServer, Faults
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
    with ChatServer(served, KEY, faults) as a, ChatServer(served, KEY, faults) as b:
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
