"""What a run promises: honest exit codes, nothing lost marked done, re-runs repair, one run identity.

Each test names the defect it guards against; docs/testing.md lists the bugs planted to check them.
"""

import asyncio
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import msgspec
import pytest
from afcot_paper.validators import not_prose

from afcot_core import recipe as recipes
from afcot_core import runner
from afcot_core.cache import ReplayCache
from afcot_core.errors import BadInput
from afcot_core.hookspecs import hookimpl
from afcot_core.protocols import ItemContext
from afcot_core.records import Record
from afcot_core.shards import DoneMarker, ShardStore, atomic_write
from afcot_core.teacher import Batching, Request, RetryPolicy, Teacher

from .conftest import QUICKSTART, ROOT, afcot

SMALL = ["generate.source.items=30", "generate.shard_size=10"]


def generate(plugins, out: Path, sets: list[str] = SMALL) -> dict:
    return runner.run(recipes.load(QUICKSTART, plugins, sets), plugins, out, stages=["generate"], show_progress=False)


def outputs(out: Path) -> dict[str, bytes]:
    gen = out / "generate"
    return {p.name: p.read_bytes() for p in sorted([*gen.glob("shard-*.tar"), *gen.glob("rejects-*.jsonl")])}


@pytest.fixture(scope="module")
def reference(plugins, tmp_path_factory) -> dict[str, bytes]:
    """The shards of an uninterrupted run of SMALL."""
    out = tmp_path_factory.mktemp("reference")
    generate(plugins, out)
    return outputs(out)


class Echo(Teacher):
    role = "llm"
    model = "echo"

    def __init__(self, batching: Batching | None = None, delays: dict[str, float] | None = None) -> None:
        super().__init__(batching or Batching(max_batch=1, max_wait_ms=0, max_concurrency=4))
        self.delays = delays or {}
        self.calls: list[list[str]] = []

    def generate(self, requests: list[Request]) -> list[str]:
        self.calls.append([r.prompt for r in requests])
        time.sleep(max(self.delays.get(r.prompt, 0.0) for r in requests))
        return [f"{r.prompt}!" for r in requests]


# 3. the replay cache


def test_a_corrupt_replay_cache_is_set_aside_with_a_warning_naming_it(plugins, tmp_path, reference, capsys):
    cache = tmp_path / "generate" / "replay.sqlite"
    cache.parent.mkdir(parents=True)
    cache.write_bytes(b"this is not a database" * 100)
    result = generate(plugins, tmp_path)
    assert result["generate"]["failed"] == 0
    assert outputs(tmp_path) == reference
    assert (tmp_path / "generate" / "replay.sqlite.corrupt").exists()
    assert str(cache) in capsys.readouterr().err + (tmp_path / "logs/run.jsonl").read_text()


def test_turning_the_cache_off_keeps_the_fingerprint_and_the_data(plugins, tmp_path, reference):
    on = runner.lock_document(recipes.load(QUICKSTART, plugins, SMALL), plugins)["fingerprint"]
    off_recipe = recipes.load(QUICKSTART, plugins, [*SMALL, "generate.cache=false", "generate.concurrency=3"])
    assert runner.lock_document(off_recipe, plugins)["fingerprint"] == on
    generate(plugins, tmp_path, [*SMALL, "generate.cache=false"])
    assert outputs(tmp_path) == reference and not (tmp_path / "generate/replay.sqlite").exists()


def test_cache_keys_depend_on_the_teacher_scope_the_attempt_and_the_seed(tmp_path):
    async def scenario() -> list[bool]:
        cache = ReplayCache(tmp_path / "c.sqlite")
        first, other = Echo(), Echo()
        first.use_cache(cache, "scope-a")
        other.use_cache(cache, "scope-b")
        reply = await first.ask("p", attempt=0, seed=1)
        await first.remember([reply])
        hits = [(await first.ask("p", attempt=0, seed=1)).cache_hit,
                (await other.ask("p", attempt=0, seed=1)).cache_hit,   # another teacher or config
                (await first.ask("p", attempt=1, seed=1)).cache_hit,   # a re-ask
                (await first.ask("p", attempt=0, seed=2)).cache_hit]   # another sample
        cache.close()
        return hits

    assert asyncio.run(scenario()) == [True, False, False, False]


def test_cache_keys_depend_on_the_audio_and_scopes_on_name_and_config(tmp_path):
    from afcot_core.cache import scope_of
    from afcot_core.records import AudioRef

    one, other = AudioRef(sha256="a" * 64), AudioRef(sha256="b" * 64)
    assert ReplayCache.key("s", "p", "", one) != ReplayCache.key("s", "p", "", other)
    assert ReplayCache.key("s", "p", "", one) != ReplayCache.key("s", "p", "", None)
    assert ReplayCache.key("s", "p", "", None) != ReplayCache.key("s", "p", "so far", None)
    assert len({scope_of("alm", {"t": 1}), scope_of("llm", {"t": 1}), scope_of("alm", {"t": 2})}) == 3
    cache = ReplayCache(tmp_path / "a" / "b" / "replay.sqlite")  # its folder is made
    cache.close()
    assert (tmp_path / "a" / "b" / "replay.sqlite").exists()


def test_replies_are_committed_before_the_shard_that_rests_on_them(plugins, tmp_path, monkeypatch):
    seen: list[int] = []
    commit = ShardStore.commit

    def spy(self, index, records):
        with sqlite3.connect(self.root / "replay.sqlite") as other:  # sees committed rows only
            seen.append(other.execute("SELECT count(*) FROM replies").fetchone()[0])
        return commit(self, index, records)

    monkeypatch.setattr(ShardStore, "commit", spy)
    generate(plugins, tmp_path, ["generate.source.items=8", "generate.shard_size=8"])
    assert seen and seen[0] > 0


# 4. timeouts and SIGINT


class Hang(Echo):
    def generate(self, requests):
        time.sleep(30)
        return super().generate(requests)


def test_a_hanging_engine_times_out_and_is_retried_then_fails_the_request():
    teacher = Hang()
    teacher.use_retry(RetryPolicy(timeout_s=0.1, retries=2, backoff_s=0.01))
    started = time.perf_counter()
    with pytest.raises(Exception, match=r"no reply within 0.1 s \(after 3 tries"):
        asyncio.run(teacher.ask("p"))
    assert time.perf_counter() - started < 2


def test_sigint_stops_a_run_with_a_hanging_teacher_promptly_with_exit_130(tmp_path):
    out = tmp_path / "run"
    switch = tmp_path / "outage"
    switch.touch()
    faults = f'{{rate=1.0, kinds=["timeout"], switch="{switch}", hang_s=60}}'
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fault_plugin.cli", "recipe", "run", str(QUICKSTART), "--out", str(out),
         "--quiet", "--stages", "generate", "--set", "generate.source.items=20",
         "--set", f'generate.llm={{use="faulty-llm", faults={faults}}}'],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        # a suite started as a background job inherits an ignored SIGINT: give the run the default one
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 30
    while not (out / "logs" / "run.jsonl").exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    started = time.perf_counter()
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, err
    assert time.perf_counter() - started < 5
    assert not list((out / "generate").glob("*.done.json")) and not list((out / "generate").glob("*.tmp"))


# 6. resume verifies what it skips


def test_resume_redoes_a_changed_a_truncated_and_a_deleted_shard(plugins, tmp_path, reference):
    generate(plugins, tmp_path)
    gen = tmp_path / "generate"
    changed = bytearray((gen / "shard-000001.tar").read_bytes())
    changed[700] ^= 0xFF  # same size, other bytes
    (gen / "shard-000001.tar").write_bytes(bytes(changed))
    truncated = gen / "shard-000002.tar"
    truncated.write_bytes(truncated.read_bytes()[:1000])
    (gen / "rejects-000002.jsonl").unlink()
    before = (gen / "shard-000000.tar").stat().st_mtime_ns
    generate(plugins, tmp_path)
    assert outputs(tmp_path) == reference
    assert (gen / "shard-000000.tar").stat().st_mtime_ns == before  # the intact one is skipped


def test_a_shard_with_failed_items_is_marked_incomplete_and_redone(plugins, tmp_path, reference):
    generate(plugins, tmp_path)
    marker = tmp_path / "generate/shard-000001.done.json"
    done = msgspec.json.decode(marker.read_bytes(), type=DoneMarker)
    done.counts.failed, done.counts.accepted = 1, done.counts.accepted - 1
    marker.write_bytes(msgspec.json.encode(done))
    assert not done.complete
    before = (tmp_path / "generate/shard-000001.tar").stat().st_mtime_ns
    generate(plugins, tmp_path)
    assert (tmp_path / "generate/shard-000001.tar").stat().st_mtime_ns != before
    assert outputs(tmp_path) == reference


# 7. sample keys


@pytest.mark.parametrize(("ids", "message"), [
    (["a/b", "a.b"], "id 'a.b' and id 'a/b' (line 1) would both be stored as sample 'a_b'"),
    (["x", " "], ":2: empty id"),
])
def test_ids_that_cannot_be_told_apart_are_refused_before_anything_is_written(tmp_path, ids, message):
    lines = [{"id": i, "audio": "a.flac", "question": "q?", "answer": "x"} for i in ids]
    manifest = tmp_path / "items.jsonl"
    manifest.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    result = afcot("recipe", "run", str(QUICKSTART), "--out", str(tmp_path / "o"), "--stages", "generate",
                   "--set", f'generate.source={{use="manifest", path="{manifest}"}}')
    assert result.returncode == 2 and message in result.stderr
    assert not (tmp_path / "o").exists()


# 8. run identity


def test_a_refused_run_writes_nothing(plugins, tmp_path):
    generate(plugins, tmp_path, ["generate.source.items=4"])
    lock = (tmp_path / "recipe.lock.toml").read_bytes()
    other = recipes.load(QUICKSTART, plugins, ["generate.source.items=4", "generate.source.seed=5"])
    with pytest.raises(BadInput, match="different recipe"):
        runner.run(other, plugins, tmp_path, stages=["generate"], show_progress=False)
    assert (tmp_path / "recipe.lock.toml").read_bytes() == lock


class Unrelated:
    @hookimpl
    def register_validators(self, register):
        register("never-used", object, msgspec.Struct, "a validator no recipe here names")


def test_an_unrelated_plugin_does_not_change_the_fingerprint(plugins):
    from afcot_core import plugins as loader

    recipe = recipes.load(QUICKSTART, plugins, SMALL)
    more = loader.load(extra={"unrelated": Unrelated()})
    more.versions["unrelated"] = "9.9"
    assert runner.lock_document(recipes.load(QUICKSTART, more, SMALL), more)["fingerprint"] == \
        runner.lock_document(recipe, plugins)["fingerprint"]


def test_the_fingerprint_covers_prompt_texts(plugins, monkeypatch):
    recipe = recipes.load(QUICKSTART, plugins, SMALL)
    before = runner.lock_document(recipe, plugins)["fingerprint"]
    prompts = recipe.stages["generate"].strategies["aqa"].registration.prompts
    key = next(iter(prompts))
    monkeypatch.setitem(prompts, key, prompts[key] + " Be brief.")
    assert runner.lock_document(recipe, plugins)["fingerprint"] != before


@pytest.mark.parametrize("env", [{"RANK": "2", "WORLD_SIZE": "2"}, {"RANK": "-1", "WORLD_SIZE": "2"},
                                 {"RANK": "1"}, {"WORLD_SIZE": "0", "RANK": "0"}, {"RANK": "a", "WORLD_SIZE": "2"}])
def test_bad_rank_or_world_size_is_bad_input_and_writes_nothing(plugins, tmp_path, env, monkeypatch):
    for name in ("RANK", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(BadInput, match="RANK"):
        generate(plugins, tmp_path / "o", ["generate.source.items=4"])
    assert not (tmp_path / "o").exists()


def test_a_second_process_with_the_same_rank_is_refused(plugins, tmp_path):
    tmp_path.mkdir(exist_ok=True)
    with runner.exclusive(tmp_path, 0):
        result = afcot("recipe", "run", str(QUICKSTART), "--out", str(tmp_path), "--stages", "generate")
        assert result.returncode == 2 and "another afcot process with rank 0" in result.stderr
        assert not (tmp_path / "recipe.lock.toml").exists()
        with runner.exclusive(tmp_path, 1):  # another rank is fine
            pass


# 9. canonical records


def test_the_trace_keeps_the_order_in_which_calls_were_asked():
    slow_first = Echo(delays={"first": 0.2})

    async def scenario() -> list[str]:
        ctx = ItemContext(slow_first, slow_first, item_id="i")
        await asyncio.gather(ctx.llm("first"), ctx.llm("second"))
        return [call.prompt for call in ctx.trace]

    assert asyncio.run(scenario()) == ["first", "second"]


def test_stored_records_carry_no_wall_clock_or_cache_facts(tmp_path, plugins):
    generate(plugins, tmp_path, ["generate.source.items=4"])
    lines = (tmp_path / "generate/rejects-000000.jsonl").read_text().splitlines()
    import webdataset as wds

    records = [msgspec.json.decode(s["json"], type=Record)
               for s in wds.WebDataset(str(tmp_path / "generate/shard-000000.tar"), shardshuffle=False)]
    records += [msgspec.json.decode(line, type=Record) for line in lines]
    calls = [c for r in records for c in r.trace]
    assert calls and all(c.latency_s == 0 and not c.cache_hit for c in calls)


# 5. replies that are not prose


@pytest.mark.parametrize("text", ['{"oops": <not json', "#@!%& ~^* ;;;", "\x00\x07 beep", "", "[1, 2]"])
def test_garbage_is_not_prose(text):
    assert not_prose(text)


@pytest.mark.parametrize("text", ["The pitch is rising.", "I hear 9 separate events.", "Yes.", "3", "about -12 dB"])
def test_teacher_sentences_are_prose(text):
    assert not_prose(text) is None


# 14. shard writes are atomic and the marker comes last


def test_a_shard_is_fsynced_under_a_temporary_name_renamed_and_marked_done_last(plugins, tmp_path, monkeypatch):
    events: list[str] = []
    fsync, replace = os.fsync, os.replace
    def named_fsync(fd: int) -> None:
        events.append(f"fsync {Path(os.readlink(f'/proc/self/fd/{fd}')).name}")
        fsync(fd)

    monkeypatch.setattr(os, "fsync", named_fsync)
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append(f"rename {Path(a).name} {Path(b).name}"),
                                                     replace(a, b))[1])
    generate(plugins, tmp_path, ["generate.source.items=4"])
    renames = [e for e in events if e.startswith("rename shard-") or e.startswith("rename rejects-")]
    assert renames == ["rename shard-000000.tar.tmp shard-000000.tar",
                       "rename rejects-000000.jsonl.tmp rejects-000000.jsonl",
                       "rename shard-000000.done.json.tmp shard-000000.done.json"]
    for name in ("shard-000000.tar.tmp", "shard-000000.done.json.tmp"):
        assert events.index(f"fsync {name}") < events.index(next(e for e in events if e.startswith(f"rename {name}")))


def test_a_sink_that_fails_midway_leaves_neither_a_shard_nor_a_tmp(tmp_path):
    def half(tmp: Path) -> None:
        tmp.write_bytes(b"partial")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write(tmp_path / "shard-000000.tar", half)
    assert list(tmp_path.iterdir()) == []


def test_the_micro_batcher_waits_max_wait_ms_for_more_requests():
    teacher = Echo(Batching(max_batch=8, max_wait_ms=150, max_concurrency=1))

    async def scenario() -> None:
        tasks = []
        for i in range(3):
            tasks.append(asyncio.create_task(teacher.ask(f"p{i}")))
            await asyncio.sleep(0.02)
        await asyncio.gather(*tasks)

    asyncio.run(scenario())
    assert teacher.calls == [["p0", "p1", "p2"]]


# 13. a bug is not a teacher fault


class BuggyStrategy:
    name = "buggy"
    kinds = ("aqa", "classification")

    def __init__(self, config):
        pass

    async def gather(self, item, ctx):
        return item.no_such_field  # a programming error

    async def compose(self, item, evidence, ctx):
        raise AssertionError("never reached")


class Buggy:
    @hookimpl
    def register_strategies(self, register):
        register("buggy", BuggyStrategy, msgspec.Struct, "raises AttributeError")


def test_a_programming_error_stops_the_run_instead_of_failing_items(tmp_path):
    from afcot_core import plugins as loader

    plugins = loader.load(extra={"buggy": Buggy()})
    recipe = recipes.load(QUICKSTART, plugins, ["generate.source.items=4", 'generate.strategies.aqa={use="buggy"}',
                                                'generate.strategies.classification={use="buggy"}'])
    with pytest.raises(AttributeError, match="no_such_field"):
        runner.run(recipe, plugins, tmp_path, stages=["generate"], show_progress=False)
    assert not list((tmp_path / "generate").glob("*.done.json"))


def test_retry_delays_double_with_jitter_up_to_a_minute():
    import random

    random.seed(7)
    policy = RetryPolicy(backoff_s=1.0)
    for retry, ceiling in ((0, 1.0), (1, 2.0), (3, 8.0), (10, 60.0)):
        delays = [policy.delay(retry) for _ in range(2000)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)
        assert min(delays) < 0.52 * ceiling and max(delays) > 0.98 * ceiling  # the jitter spans the upper half


@pytest.mark.parametrize("bad", [{"timeout_s": 0}, {"retries": -1}, {"backoff_s": -0.5}])
def test_a_retry_policy_is_checked(bad):
    with pytest.raises(ValueError) as err:
        RetryPolicy(**bad)
    assert str(err.value) == "timeout_s must be > 0, retries and backoff_s >= 0"
    RetryPolicy(retries=0, backoff_s=0.0)


def test_counts_rejects_and_samples_read_back_as_written(plugins, tmp_path):
    from afcot_core.shards import iter_samples, read_markers

    first = generate(plugins, tmp_path)["generate"]
    assert generate(plugins, tmp_path)["generate"] == first  # totals of skipped shards add up the same
    gen = tmp_path / "generate"
    for marker in read_markers(gen):
        lines = [json.loads(x) for x in (gen / f"rejects-{marker.shard:06d}.jsonl").read_text().splitlines()]
        assert marker.counts.rejected == sum(x["verdict"] == "rejected" for x in lines)
        assert marker.counts.failed == sum(x["verdict"] == "failed" for x in lines) == 0
        assert all(x["item"]["audio"]["data"] is None for x in lines)  # no audio bytes in the sidecar
        samples = list(iter_samples(gen / f"shard-{marker.shard:06d}.tar"))
        assert len(samples) == marker.counts.accepted == len({key for key, _ in samples})
        assert all(sorted(parts) == ["flac", "json", "txt"] for _, parts in samples)
        assert all(json.loads(parts["json"])["item"]["id"].startswith(key[:8]) for key, parts in samples)
    assert sum(m.counts.items for m in read_markers(gen)) == 30


def test_moving_a_run_to_other_servers_keeps_its_identity(plugins):
    paper = ROOT / "recipes" / "af3_sound_cot.toml"
    servers = ['generate.llm.backend="openai"', 'generate.llm.max_requests_per_server=8']

    def identity(*sets: str) -> tuple[str, dict]:
        recipe = recipes.load(paper, plugins, [*servers, *sets])
        return runner.lock_document(recipe, plugins)["fingerprint"], recipe.stages["generate"].llm.identity_table()

    first, llm = identity('generate.llm.base_urls=["http://node1:8000/v1"]')
    assert "base_urls" not in llm and "max_requests_per_server" not in llm and llm["temperature"] == 0.6
    assert identity('generate.llm.base_urls=["http://node2:8000/v1", "http://node3:8000/v1"]')[0] == first
    assert identity('generate.llm.base_urls=["http://node1:8000/v1"]', "generate.llm.temperature=0.7")[0] != first
