"""End to end: the quickstart recipe through the real CLI, resume, kill -9, bad audio, bad LLM JSON."""

import json
import os
import signal
import subprocess
import sys
import time

import msgspec
import pytest
import soundfile as sf
import webdataset as wds
from afcot_embedded.llm import EmbeddedLlm, EmbeddedLlmConfig

from afcot_core import recipe as recipes
from afcot_core import runner
from afcot_core.errors import BadInput
from afcot_core.hookspecs import hookimpl
from afcot_core.teacher import Request
from afcot_core.template import parse_strict

from .conftest import QUICKSTART, afcot


def test_quickstart_generate_under_60s_and_shards_read_back(tmp_path):
    out = tmp_path / "run"
    started = time.perf_counter()
    result = afcot("recipe", "run", str(QUICKSTART), "--out", str(out), "--stages", "generate")
    elapsed = time.perf_counter() - started
    assert result.returncode == 0, result.stderr
    assert elapsed < 60
    assert (out / "recipe.lock.toml").exists() and (out / "logs" / "run.jsonl").exists()
    shards = sorted(str(p) for p in (out / "generate").glob("shard-*.tar"))
    assert len(shards) == 4
    samples = list(wds.WebDataset(shards, shardshuffle=False))
    assert samples
    for sample in samples:
        record = json.loads(sample["json"])
        cot = parse_strict(sample["txt"].decode())
        assert cot.conclusion == record["item"]["answer"]
        wave, sr = sf.read(__import__("io").BytesIO(sample["flac"]))
        assert sr == 16000 and len(wave) > 0
    report = json.loads(afcot("inspect", str(out)).stdout)
    assert report["accepted"] + report["rejected"] + report["failed"] == report["items"] == 200
    assert report["failed"] == 0 and report["accepted"] == len(samples)
    log = [json.loads(line) for line in (out / "logs" / "run.jsonl").read_text().splitlines()]
    assert any(e["event"] == "generate finished" for e in log)


def test_rerun_resumes_without_duplicates(tmp_path, plugins):
    recipe = recipes.load(QUICKSTART, plugins, ["generate.source.items=40", "generate.shard_size=10"])
    first = runner.run(recipe, plugins, tmp_path, stages=["generate"], show_progress=False)
    marker = tmp_path / "generate" / "shard-000002.done.json"
    marker.unlink()  # as if the run died while writing shard 2
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "generate").glob("shard-*.tar")}
    second = runner.run(recipe, plugins, tmp_path, stages=["generate"], show_progress=False)
    assert first["generate"] == second["generate"]
    after = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "generate").glob("shard-*.tar")}
    assert {k for k in after if after[k] != before[k]} == {"shard-000002.tar"}
    other = recipes.load(QUICKSTART, plugins, ["generate.source.items=40", "generate.shard_size=10",
                                               "generate.source.seed=5"])
    with pytest.raises(BadInput, match="different recipe"):
        runner.run(other, plugins, tmp_path, stages=["generate"], show_progress=False)


def test_kill_9_then_resume_gives_every_item_exactly_once(tmp_path):
    out = tmp_path / "run"
    args = [sys.executable, "-m", "afcot_core.cli", "recipe", "run", str(QUICKSTART), "--out", str(out), "--quiet",
            "--stages", "generate",
            "--set", "generate.source.items=400", "--set", "generate.shard_size=20"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy())
    deadline = time.time() + 60
    while time.time() < deadline and len(list((out / "generate").glob("*.done.json"))) < 3:
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done_before = len(list((out / "generate").glob("*.done.json")))
    assert 3 <= done_before < 20
    result = afcot("recipe", "run", str(QUICKSTART), "--out", str(out), "--quiet", "--stages", "generate",
                   "--set", "generate.source.items=400", "--set", "generate.shard_size=20")
    assert result.returncode == 0, result.stderr
    keys = [s["__key__"] for s in wds.WebDataset(sorted(str(p) for p in (out / "generate").glob("shard-*.tar")),
                                                 shardshuffle=False)]
    rejected = [json.loads(line)["item"]["id"] for p in (out / "generate").glob("rejects-*.jsonl")
                for line in p.read_text().splitlines()]
    assert len(keys) == len(set(keys))
    assert len(keys) + len(rejected) == 400
    assert not list((out / "generate").glob("*.tmp"))


def test_manifest_with_broken_audio_rejects_those_items_and_goes_on(tmp_path, plugins):
    from afcot_embedded.source import make_item

    lines = []
    for i in range(6):
        item = make_item(i, 0, 1.0)
        path = tmp_path / f"clip{i}.flac"
        path.write_bytes(item.audio.data)
        lines.append({"id": item.id, "audio": path.name, "question": item.question, "answer": item.answer,
                      "kind": item.kind, "choices": item.choices})
    (tmp_path / "clip1.flac").write_bytes(b"")                       # empty file
    (tmp_path / "clip2.flac").write_bytes(b"fLaC\x00garbage" * 10)   # corrupt
    lines[3]["audio"] = "missing.flac"                               # absent
    manifest = tmp_path / "items.jsonl"
    manifest.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    sets = [f'generate.source={{use="manifest", path="{manifest}"}}']
    result = runner.run(recipes.load(QUICKSTART, plugins, sets), plugins, tmp_path / "out", stages=["generate"],
                        show_progress=False)
    assert result["generate"]["accepted"] + result["generate"]["rejected"] == 6
    rejects = {json.loads(x)["item"]["id"]: json.loads(x)["reason"]
               for x in (tmp_path / "out/generate/rejects-000000.jsonl").read_text().splitlines()}
    for i in (1, 2):
        assert rejects[lines[i]["id"]].startswith("audio: cannot decode")
    assert str(tmp_path / "clip1.flac") in rejects[lines[1]["id"]]
    assert rejects[lines[3]["id"]] == f"audio: no such audio file: {tmp_path / 'missing.flac'}"


def test_malformed_manifest_line_is_bad_input_naming_file_and_line(tmp_path):
    manifest = tmp_path / "items.jsonl"
    manifest.write_text('{"id": "a", "audio": "a.flac", "question": "q", "answer": "x"}\n{"id": "b", "audio": 3}\n')
    result = afcot("recipe", "run", str(QUICKSTART), "--out", str(tmp_path / "o"), "--stages", "generate",
                   "--set", f'generate.source={{use="manifest", path="{manifest}"}}')
    assert result.returncode == 2
    assert f"{manifest}:2" in result.stderr
    assert not (tmp_path / "o").exists()


class GarbledLlm(EmbeddedLlm):
    """The scripted LLM, except that every reply comes back as broken JSON."""

    model = "garbled"

    def generate(self, requests: list[Request]) -> list[str]:
        return [reply[:-1] for reply in super().generate(requests)]


class GarblePlugin:
    @hookimpl
    def register_teacher_llms(self, register):
        register("garbled-llm", GarbledLlm, EmbeddedLlmConfig, "breaks its JSON")


def test_malformed_teacher_json_rejects_with_reason_and_the_run_goes_on(tmp_path):
    from afcot_core import plugins as loader

    plugins = loader.load(extra={"garble": GarblePlugin()})
    recipe = recipes.load(QUICKSTART, plugins, ["generate.llm.use=garbled-llm", "generate.source.items=20"])
    result = runner.run(recipe, plugins, tmp_path, stages=["generate"], show_progress=False)
    assert result["generate"]["failed"] == 0 and result["generate"]["rejected"] == 20
    rejects = [json.loads(x) for x in (tmp_path / "generate/rejects-000000.jsonl").read_text().splitlines()]
    for r in rejects:  # a gate that will not parse rejects; a prediction falls back to "unsure", a validation to 0
        if r["item"]["kind"] == "aqa":
            assert r["reason"].startswith("gate/malformed-json: malformed LLM JSON after 3 tries")
        else:
            assert r["reason"].startswith("paper-accept") and r["prediction"] == "unsure"
            assert r["codes"] == ["predict/fallback", "validate/fallback"]
    assert {r["item"]["kind"] for r in rejects} == {"aqa", "classification"}
    record = json.loads((tmp_path / "generate/rejects-000000.jsonl").read_text().splitlines()[0])
    assert record["trace"] and all(isinstance(c["prompt"], str) for c in record["trace"])


def test_lock_file_records_resolved_config_plugins_and_prompt_hashes(tmp_path, plugins):
    import tomllib

    runner.run(recipes.load(QUICKSTART, plugins, ["generate.source.items=4"]), plugins, tmp_path,
               stages=["generate"], show_progress=False)
    lock = tomllib.loads((tmp_path / "recipe.lock.toml").read_text())
    assert lock["recipe"]["generate"]["source"] == {"use": "embedded", "items": 4, "seed": 0,
                                                    "classification_fraction": 0.5, "negatives": "ontology"}
    assert lock["recipe"]["generate"]["alm"]["batching"]["max_batch"] == 32
    assert "paper" in lock["plugins"] and any(k.endswith("paper/gate") for k in lock["prompts"])
    assert len(lock["fingerprint"]) == 64
    assert msgspec.json.decode((tmp_path / "generate/shard-000000.done.json").read_bytes())["fingerprint"] == \
        lock["fingerprint"]


def test_sink_can_leave_out_audio_and_traces(tmp_path, plugins):
    sets = ["generate.source.items=6", "generate.sink.audio=false", "generate.sink.trace=false"]
    runner.run(recipes.load(QUICKSTART, plugins, sets), plugins, tmp_path, stages=["generate"], show_progress=False)
    samples = list(wds.WebDataset(str(tmp_path / "generate/shard-000000.tar"), shardshuffle=False))
    assert samples and all("flac" not in s and json.loads(s["json"])["trace"] == [] for s in samples)


def test_replay_cache_answers_every_call_of_a_redone_shard(tmp_path, plugins):
    recipe = recipes.load(QUICKSTART, plugins, ["generate.source.items=12",
                                                'generate.validators=[{use="paper-accept"}]'])
    first = runner.run(recipe, plugins, tmp_path, stages=["generate"], show_progress=False)
    shard = (tmp_path / "generate/shard-000000.tar").read_bytes()
    for done in (tmp_path / "generate").glob("*.done.json"):
        done.unlink()  # as if the run died before marking the shard done
    second = runner.run(recipe, plugins, tmp_path, stages=["generate"], show_progress=False)
    assert first["generate"] == second["generate"]
    assert (tmp_path / "generate/shard-000000.tar").read_bytes() == shard  # cache facts stay out of records
    finished = [json.loads(line) for line in (tmp_path / "logs/run.jsonl").read_text().splitlines()
                if '"generate finished"' in line]
    # the replies of accepted items are replayed; those of rejected items, and replies that would not parse, are not
    assert finished[0]["cache_hits"] == 0 and finished[-1]["cache_hits"] >= 0.9 * finished[-1]["calls"] > 0
    assert (tmp_path / "generate" / "replay.sqlite").exists()


def test_ranks_split_the_partitions_between_them(tmp_path, plugins, monkeypatch):
    recipe = recipes.load(QUICKSTART, plugins, ["generate.source.items=40", "generate.shard_size=10"])
    monkeypatch.setenv("WORLD_SIZE", "2")
    done = {}
    for rank in ("0", "1"):
        monkeypatch.setenv("RANK", rank)
        runner.run(recipe, plugins, tmp_path, stages=["generate"], show_progress=False)
        done[rank] = sorted(p.name for p in (tmp_path / "generate").glob("*.done.json"))
    assert done["0"] == ["shard-000000.done.json", "shard-000002.done.json"]
    assert len(done["1"]) == 4
    assert (tmp_path / "generate/replay-rank1.sqlite").exists()


def test_the_final_validators_judge_the_composed_cot_a_wrong_conclusion_is_rejected(tmp_path):
    """The format validator reads the CoT a strategy composed: one whose CONCLUSION is not the item's answer is
    rejected by name, whatever the evidence before it said."""
    from afcot_paper.algorithms import Alg6, Alg6Config

    from afcot_core import plugins as loader
    from afcot_core.api import Validator

    class WrongConclusion(Alg6):
        async def compose(self, item, evidence, ctx):
            return msgspec.structs.replace(await super().compose(item, evidence, ctx), conclusion="a cat")

    class Unnamed(Validator):  # names itself nowhere: its reasons go under its registration's name
        def __init__(self, config):
            pass

        def check(self, item, evidence, cot):
            return "not wanted" if item.kind == "classification" else None

    class Plugin:
        @hookimpl
        def register_strategies(self, register):
            register("wrong-conclusion", WrongConclusion, Alg6Config, "Algorithm 6 with a wrong CONCLUSION")

        @hookimpl
        def register_validators(self, register):
            register("no-classification", Unnamed, msgspec.defstruct("NoConfig", []), "rejects classification")

    plugins = loader.load(extra={"wrong": Plugin()})
    recipe = recipes.load(QUICKSTART, plugins, ["generate.source.items=12", "generate.shard_size=12",
                                                'generate.strategies.aqa.use="wrong-conclusion"',
                                                'generate.validators=[{use="format"}, {use="paper-accept"}, '
                                                '{use="no-classification"}]'])
    runner.run(recipe, plugins, tmp_path, stages=["generate"], show_progress=False)
    records = [json.loads(line) for line in (tmp_path / "generate" / "rejects-000000.jsonl").read_text().splitlines()]
    wrong = [r for r in records if r["reason"].startswith("format: conclusion 'a cat' is not the answer")]
    assert wrong and all(r["item"]["kind"] == "aqa" for r in wrong)
    stats = json.loads((tmp_path / "generate" / "stats.json").read_text())
    assert stats["total"]["reject_reasons"]["format"] == len(wrong)
    unwanted = [r for r in records if r["item"]["kind"] == "classification" and r["verdict"] == "rejected"
                and not r["reason"].startswith("gate/")]
    assert unwanted and all(r["reason"] == "no-classification: not wanted" for r in unwanted)


def test_the_logged_mean_batch_size_is_rounded_to_two_places_and_zero_without_batches():
    from afcot_core.stages.generator import _mean

    assert _mean([1, 2, 2]) == 1.67 and _mean([4]) == 4.0 and _mean([]) == 0.0


def test_a_bug_in_one_shard_stops_the_stage_with_that_error_and_cancels_the_shard_still_running(tmp_path):
    """A strategy bug (not a teacher fault) in shard 0 while shard 1 still waits: the stage raises the bug itself,
    at once, the waiting shard cancelled (not its CancelledError, not after its wait)."""
    import asyncio

    from afcot_paper.algorithms import Alg6, Alg6Config

    from afcot_core import plugins as loader

    class Buggy(Alg6):
        async def gather(self, item, ctx):
            number = int(item.id.rsplit("-", 1)[1])
            if number == 1:
                raise RuntimeError("a bug in the strategy")
            if number >= 4:  # shard 1 is still waiting when shard 0 fails
                await asyncio.sleep(30)
            return await super().gather(item, ctx)

    class Plugin:
        @hookimpl
        def register_strategies(self, register):
            register("buggy", Buggy, Alg6Config, "Algorithm 6 with a bug")

    plugins = loader.load(extra={"buggy": Plugin()})
    recipe = recipes.load(QUICKSTART, plugins, ["generate.source.items=8", "generate.shard_size=4",
                                                "generate.source.classification_fraction=0.0",
                                                'generate.strategies.aqa.use="buggy"'])
    started = time.monotonic()
    with pytest.raises(RuntimeError, match=r"^a bug in the strategy$"):
        runner.run(recipe, plugins, tmp_path, stages=["generate"], show_progress=False)
    assert time.monotonic() - started < 20
    assert not list((tmp_path / "generate").glob("*.done.json"))


def test_the_run_log_has_each_shard_and_the_stage_s_end_and_stats_json_its_calls(tmp_path, plugins):
    recipe = recipes.load(QUICKSTART, plugins, ["generate.source.items=8", "generate.shard_size=4"])
    runner.run(recipe, plugins, tmp_path, stages=["generate"], show_progress=False)
    events = [json.loads(line) for line in (tmp_path / "logs" / "run.jsonl").read_text().splitlines()]
    written = [e for e in events if e.get("event") == "shard written"]
    assert sorted(e["shard"] for e in written) == [0, 1]
    assert all(e["accepted"] + e["rejected"] + e["failed"] == 4 for e in written)
    assert all(isinstance(e["seconds"], float) and 0 <= e["seconds"] < 60 and round(e["seconds"], 2) == e["seconds"]
               for e in written)
    (end,) = [e for e in events if e.get("event") == "generate finished"]
    assert end["accepted"] + end["rejected"] + end["failed"] == 8 and end["calls"] > 0 and end["cache_hits"] == 0
    assert 1 <= end["alm_batches"] <= 64 and 1 <= end["llm_batches"] <= 64  # mean requests per engine call
    stats = json.loads((tmp_path / "generate" / "stats.json").read_text())
    assert stats["run"] == {"calls": end["calls"], "cache_hits": 0}
    records = [json.loads(line) for path in (tmp_path / "generate").glob("rejects-*.jsonl")
               for line in path.read_text().splitlines()]
    for shard in (tmp_path / "generate").glob("shard-*.tar"):
        records += [json.loads(s["json"]) for s in wds.WebDataset(str(shard), shardshuffle=False)]
    assert len(records) == 8 and end["calls"] == sum(len(r["trace"]) for r in records)  # every item's calls
