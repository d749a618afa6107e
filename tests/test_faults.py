"""Fault injection: the embedded teachers failing a seeded 20% of their calls (tests/fault_plugin).

Transient faults (exceptions, HTTP 429, hangs) must give the same shards as a fault-free run;
garbled replies (cut JSON, junk text) must never be accepted nor replayed from the cache;
persistent faults must fail the run with the items named, and a plain re-run completes them.
"""

import json
from pathlib import Path

import msgspec
import pytest
import webdataset as wds

from afcot_core import cli, runner
from afcot_core import plugins as loader
from afcot_core import recipe as recipes
from afcot_core.errors import RunIncomplete
from afcot_core.records import Record

from .conftest import QUICKSTART
from .fault_plugin import GARBAGE, INJECTORS, FaultPlugin


@pytest.fixture(scope="module")
def faulty_plugins():
    return loader.load(extra={"faults": FaultPlugin()})


def fault_sets(switch: Path, kinds: list[str], rate: float = 0.2, persistent: bool = False,
               items: int = 40) -> list[str]:
    faults = (f'{{rate={rate}, kinds={json.dumps(kinds)}, switch="{switch}", persistent={str(persistent).lower()}, '
              'hang_s=0.3}')
    return [f"generate.source.items={items}", "generate.shard_size=20",
            f'generate.alm={{use="faulty-alm", batching={{max_batch=8, max_concurrency=4}}, faults={faults}}}',
            f'generate.llm={{use="faulty-llm", batching={{max_batch=16, max_concurrency=4}}, faults={faults}}}',
            "generate.teacher_timeout_s=0.15", "generate.teacher_retries=8", "generate.retry_backoff_s=0.001"]


def outputs(out: Path) -> dict[str, bytes]:
    """Every shard and rejects file of a run, by name."""
    gen = out / "generate"
    return {p.name: p.read_bytes() for p in sorted([*gen.glob("shard-*.tar"), *gen.glob("rejects-*.jsonl")])}


def accepted(out: Path) -> dict[str, Record]:
    shards = sorted(str(p) for p in (out / "generate").glob("shard-*.tar"))
    return {r.item.id: r for r in (msgspec.json.decode(s["json"], type=Record)
                                   for s in wds.WebDataset(shards, shardshuffle=False))}


def run(plugins, sets: list[str], out: Path) -> dict:
    return runner.run(recipes.load(QUICKSTART, plugins, sets), plugins, out, stages=["generate"],
                      show_progress=False)


def injected() -> dict[str, int]:
    counts: dict[str, int] = {}
    for injector in INJECTORS:
        for kind, n in injector.injected.items():
            counts[kind] = counts.get(kind, 0) + n
    return counts


def test_transient_faults_give_the_same_shards_as_a_fault_free_run(tmp_path, faulty_plugins):
    switch = tmp_path / "outage"
    sets = fault_sets(switch, ["exception", "transient", "timeout"])
    clean = run(faulty_plugins, sets, tmp_path / "clean")  # the switch file is absent: no faults
    switch.touch()
    INJECTORS.clear()
    faulty = run(faulty_plugins, sets, tmp_path / "faulty")
    counts = injected()
    assert counts.get("exception", 0) > 5 and counts.get("transient", 0) > 5 and counts.get("timeout", 0) > 2
    assert faulty["generate"] == clean["generate"] and faulty["generate"]["failed"] == 0
    assert outputs(tmp_path / "faulty") == outputs(tmp_path / "clean")


def test_garbled_replies_are_never_accepted_nor_replayed(tmp_path, faulty_plugins):
    switch = tmp_path / "outage"
    sets = fault_sets(switch, ["malformed_json", "garbage"])
    run(faulty_plugins, sets, tmp_path / "clean")
    reference = accepted(tmp_path / "clean")
    switch.touch()
    INJECTORS.clear()
    faulty = run(faulty_plugins, sets, tmp_path / "faulty")
    assert injected().get("garbage", 0) > 5 and injected().get("malformed_json", 0) > 5
    assert faulty["generate"]["failed"] == 0
    got = accepted(tmp_path / "faulty")
    assert len(got) >= len(reference) / 4  # junk in a caption or a sub-answer rejects its item
    for record in got.values():  # a re-asked step may be phrased otherwise (another sample), never garbled
        text = json.dumps(msgspec.to_builtins([record.cot, record.chain]))
        assert not any(junk[:6] in text for junk in GARBAGE) and "\\u0000" not in text
        assert record.cot.conclusion == record.item.answer
    reasons = [json.loads(line)["reason"] for p in (tmp_path / "faulty/generate").glob("rejects-*.jsonl")
               for line in p.read_text().splitlines()]
    assert any("is not prose" in r for r in reasons)
    # the outage ends; the shards are redone (markers gone): no garbled reply comes back from the cache
    switch.unlink()
    for marker in (tmp_path / "faulty/generate").glob("*.done.json"):
        marker.unlink()
    run(faulty_plugins, sets, tmp_path / "faulty")
    assert outputs(tmp_path / "faulty") == outputs(tmp_path / "clean")


def test_persistent_faults_fail_the_run_and_a_plain_rerun_completes(tmp_path, faulty_plugins, monkeypatch, capsys):
    switch = tmp_path / "outage"
    sets = fault_sets(switch, ["exception", "transient"], rate=0.03, persistent=True)
    sets = [*sets, "generate.teacher_retries=2"]
    run(faulty_plugins, sets, tmp_path / "clean")
    switch.touch()
    monkeypatch.setattr(loader, "default", lambda: faulty_plugins)
    argv = ["recipe", "run", str(QUICKSTART), "--out", str(tmp_path / "faulty"), "--quiet", "--stages", "generate"]
    for s in sets:
        argv += ["--set", s]
    assert cli.main(argv) == 1
    err = capsys.readouterr().err
    rejects = [json.loads(line) for p in (tmp_path / "faulty/generate").glob("rejects-*.jsonl")
               for line in p.read_text().splitlines()]
    failed = [r["item"]["id"] for r in rejects if r["verdict"] == "failed"]
    assert failed and f"{len(failed)} items failed" in err and all(item_id in err for item_id in failed[:20])
    assert all("injected" in r["reason"] for r in rejects if r["verdict"] == "failed")
    with pytest.raises(RunIncomplete):  # still failing: nothing was marked done by mistake
        run(faulty_plugins, sets, tmp_path / "faulty")
    switch.unlink()
    assert cli.main(argv) == 0
    assert outputs(tmp_path / "faulty") == outputs(tmp_path / "clean")
