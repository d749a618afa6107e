"""Experiments as recipes: ``[variants.NAME]`` tables, each variant its own run in ``OUT/NAME``, then one comparison
(``compare.json`` / ``compare.md``) shown by ``recipe run``, ``afcot inspect`` and ``afcot report``."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tomllib

import pytest

from .conftest import ROOT, afcot
from .student_data import write_shards

pytest.importorskip("torch")
pytest.importorskip("transformers")

#: the learning recipes shrunk to seconds: few items, two steps, six held-out items, short answers
TINY = ["--set", "generate.source.items=24", "--set", "generate.shard_size=12", "--set", "train.max_steps=2",
        "--set", "train.global_batch=4", "--set", "train.per_device_batch=4", "--set", "train.vocab_size=300",
        "--set", "train.num_workers=0", "--set", "evaluate.benchmarks=[{use='embedded-eval', items=6}]",
        "--set", "evaluate.model.max_new_tokens=8", "--set", "evaluate.plots=false"]


@pytest.fixture(scope="module")
def learned(tmp_path_factory):
    """``recipe run learn``, killed with SIGKILL once its second variant (plain) starts, then run again."""
    out = tmp_path_factory.mktemp("learn") / "out"
    args = [sys.executable, "-m", "afcot_core.cli", "recipe", "run", "learn", "--out", str(out), "--quiet", *TINY]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while not (out / "plain" / "recipe.lock.toml").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, "the run ended before its second variant started"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (out / "compare.json").exists() and not (out / "plain" / "evaluate").exists()
    cot = out / "cot"
    kept = {p: p.stat().st_mtime_ns for p in [*(cot / "generate").glob("shard-*.tar"),
                                               cot / "train" / "final" / "checkpoint.json",
                                               cot / "evaluate" / "embedded-eval" / "predictions.jsonl"]}
    result = afcot("recipe", "run", "learn", "--out", str(out), *TINY)
    assert result.returncode == 0, result.stderr
    return out, result, kept

def lock(run):
    return tomllib.loads((run / "recipe.lock.toml").read_text())["recipe"]


def test_learn_trains_cot_and_plain_on_the_same_items_and_compares_them(learned):
    out, result, _ = learned
    assert "| variant | accuracy |" in result.stderr  # compare.md, printed at the end of the run
    assert (out / "cot" / "generate").is_dir() and not (out / "plain" / "generate").exists()  # generated once
    assert lock(out / "plain")["train"]["data"] == "{run}/../cot/generate"
    assert lock(out / "plain")["train"]["cot"] is False and lock(out / "plain")["evaluate"]["cot"] is False
    doc = json.loads((out / "compare.json").read_text())
    cot, plain = doc["variants"]
    assert (cot["variant"], cot["targets"], plain["variant"], plain["targets"]) == ("cot", "CoT", "plain", "plain")
    assert cot["generate"] == plain["generate"] and cot["generate"]["items"] == 24
    assert cot["train"]["steps"] == plain["train"]["steps"] == 2
    assert plain["train"]["tokens_per_sample"] < cot["train"]["tokens_per_sample"]  # an answer, not a CoT
    for row in doc["variants"]:
        bench = row["benchmarks"]["embedded-eval"]
        assert bench["total"] == 6 and set(bench["groups"]) <= {"AQA-MCQ", "AQA-Yes/No", "Classification"}
        assert 0 < bench["chance"] < 1 and bench["question_prior"] is not None
    assert cot["benchmarks"]["embedded-eval"]["chance"] == plain["benchmarks"]["embedded-eval"]["chance"]
    md = (out / "compare.md").read_text()
    assert "| cot | CoT | 24 / 24 |" in md and "| plain | plain | 24 / 24 |" in md and "question prior" in md


def test_inspect_and_report_show_the_comparison(learned):
    out, _, _ = learned
    result = afcot("inspect", str(out))
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["variants"] == ["cot", "plain"] and shown["compare"] == json.loads((out / "compare.json").read_text())
    result = afcot("report", str(out))
    assert result.returncode == 0, result.stderr
    page = (out / "report.html").read_text()
    assert '<section id="compare">' in page and "<td>plain</td>" in page and 'href="cot/report.html"' in page
    assert "<h1>Run learn</h1>" in (out / "cot" / "report.html").read_text()


def test_running_the_same_command_again_redoes_only_what_is_unfinished(learned):
    """Each variant is an ordinary run: finished stages are kept, a missing evaluation is redone; the variant that
    trains on another's items is no "other recipe" in either folder."""
    out, _, _ = learned
    kept = {p: p.stat().st_mtime_ns for p in [*(out / "cot" / "generate").glob("shard-*.tar"),
                                                out / "cot" / "train" / "final" / "checkpoint.json",
                                                out / "plain" / "train" / "final" / "checkpoint.json"]}
    report = out / "plain" / "evaluate" / "embedded-eval" / "report.json"
    report.unlink()
    result = afcot("recipe", "run", "learn", "--out", str(out), "--quiet", *TINY)
    assert result.returncode == 0, result.stderr
    assert {p: p.stat().st_mtime_ns for p in kept} == kept
    assert report.is_file() and json.loads((out / "compare.json").read_text())["variants"][1]["benchmarks"]




def test_a_run_killed_in_its_second_variant_goes_on_there_when_run_again(learned):
    """The fixture's first run was killed (-9) once the plain variant had started: the command run again kept the
    cot variant's shards, checkpoint and predictions, and finished the plain one."""
    out, _, kept = learned
    assert kept and {p: p.stat().st_mtime_ns for p in kept} == kept
    rows = json.loads((out / "compare.json").read_text())["variants"]
    assert [r["variant"] for r in rows] == ["cot", "plain"] and all(r["benchmarks"] for r in rows)

def test_plan_and_validate_show_the_variants(tmp_path):
    from afcot_core import plugins, recipe, runner

    doc = runner.plan_document(recipe.load("learn", plugins.default()), None, tmp_path)
    assert [v["name"] for v in doc["variants"]] == ["cot", "plain"] and doc["missing"] == []
    assert doc["variants"][1]["stages"] == ["train", "evaluate"] and doc["variants"][1]["items_of"] == "cot"
    text = runner.plan(doc)
    assert f"variant cot -> {tmp_path / 'cot'} (generate, train, evaluate): the recipe as it is" in text
    assert "variant plain" in text and "trains on the items of 'cot'" in text
    assert "variants cot, plain" in afcot("recipe", "validate", "learn").stdout


def test_a_typo_in_a_variant_names_the_variant_and_suggests_the_key(tmp_path):
    recipe = tmp_path / "r.toml"
    recipe.write_text((ROOT / "recipes" / "compare_bfs_dfs.toml").read_text()
                      + '\n[variants.typo]\n"generate.strategies.aqa.causalty" = true\n')
    for action in ("validate", "plan", "run"):
        result = afcot("recipe", action, str(recipe), *(["--out", str(tmp_path / "out")] if action != "validate"
                                                         else []))
        assert result.returncode == 2, (action, result.stderr)
        assert "[variants.typo]" in result.stderr and "did you mean 'causality'" in result.stderr
    assert not (tmp_path / "out").exists()  # nothing written, not even the variants that were right
    base = (ROOT / "recipes" / "compare_bfs_dfs.toml").read_text().partition("[variants.")[0]
    recipe.write_text(base + "\n[variants]\nbfs = 1\n")
    result = afcot("recipe", "plan", str(recipe))
    assert result.returncode == 2 and "[variants.NAME]" in result.stderr
    recipe.write_text(base + '\n[variants."../up"]\n')
    result = afcot("recipe", "plan", str(recipe))
    assert result.returncode == 2 and "a variant's name is its folder" in result.stderr


def test_compare_bfs_dfs_runs_both_algorithms_in_one_command(tmp_path):
    result = afcot("recipe", "run", "compare_bfs_dfs", "--out", str(tmp_path), "--quiet",
                   "--set", "generate.source.items=20", "--set", "generate.shard_size=10")
    assert result.returncode == 0, result.stderr
    strategies = [lock(tmp_path / v)["generate"]["strategies"]["aqa"]["use"] for v in ("bfs", "dfs")]
    assert strategies == ["alg6-aqa-subquestions", "alg7-aqa-interactive"]
    bfs, dfs = json.loads((tmp_path / "compare.json").read_text())["variants"]
    assert bfs["generate"]["items"] == dfs["generate"]["items"] == 20
    assert bfs["generate"]["calls_per_sample"] != dfs["generate"]["calls_per_sample"]
    md = (tmp_path / "compare.md").read_text()
    assert "| variant | items | yield | calls / sample | tokens / sample |" in md  # no training columns left empty


def items(generate):
    from afcot_core.api import iter_samples

    return {json.loads(p["json"])["item"]["id"]: json.loads(p["json"])["item"]
            for shard in sorted(generate.glob("shard-*.tar")) for _, p in iter_samples(shard)}


@pytest.mark.parametrize("name, variants, extra", [
    ("compare_negatives", ("close", "random"), []),
    ("compare_batch", ("b16", "b64"), ["--set", "variants.b64.train.max_steps=1",
                                       "--set", "variants.b64.train.global_batch=8"]),
    ("compare_blend", ("cot", "blend"), []),
])
def test_the_experiment_recipes_run_end_to_end(tmp_path, name, variants, extra):
    result = afcot("recipe", "run", name, "--out", str(tmp_path), "--quiet", *TINY, *extra)
    assert result.returncode == 0, result.stderr
    rows = json.loads((tmp_path / "compare.json").read_text())["variants"]
    assert [r["variant"] for r in rows] == list(variants)
    assert all(r["train"]["steps"] and r["benchmarks"]["embedded-eval"]["total"] == 6 for r in rows)
    if name == "compare_negatives":  # the same clips and questions; the classification items' wrong options differ
        close, random = items(tmp_path / "close" / "generate"), items(tmp_path / "random" / "generate")
        assert close.keys() == random.keys()
        assert all(close[k]["answer"] == random[k]["answer"] for k in close)
        assert any(close[k]["choices"] != random[k]["choices"] for k in close if close[k]["kind"] == "classification")
    if name == "compare_batch":
        assert [lock(tmp_path / v)["train"]["global_batch"] for v in variants] == [4, 8]
        assert [r["train"]["steps"] for r in rows] == [2, 1]
    if name == "compare_blend":
        assert [r["targets"] for r in rows] == ["CoT", "CoT + plain"]
        steps = [json.loads(line) for line in (tmp_path / "blend" / "train" / "metrics.jsonl").read_text().splitlines()]
        assert set().union(*(s["sources"] for s in steps)) == {"cot", "plain"}


def test_compare_table_reads_runs(tmp_path):
    """Chance, the question prior from the training shards the lock names, train time and tokens per sample, for
    any run folders (``python -m afcot_report.compare``)."""
    from afcot_report.compare import main, summary, table

    data = write_shards(tmp_path / "shards", 4, per_shard=4)  # "Is the tone high or low?": high, low, high, low
    run = tmp_path / "plain"
    (run / "evaluate/embedded-eval").mkdir(parents=True)
    (run / "train").mkdir()
    (run / "recipe.lock.toml").write_text(f'[recipe.train]\ncot = false\ndata = "{data}"\n')
    report = {"overall": {"accuracy": 0.5, "total": 2}, "subset": {"AQA-MCQ": {"accuracy": 0.5}}}
    (run / "evaluate/embedded-eval/report.json").write_text(json.dumps(report))
    items = [{"question": "Is the tone high or low?", "choices": ["high", "low"], "answer": "high"},
             {"question": "Classify the sound.", "choices": ["a", "b", "c", "d"], "answer": "a"}]
    (run / "evaluate/embedded-eval/embedded-eval-predictions.jsonl").write_text(
        "".join(json.dumps(i) + "\n" for i in items))
    steps = [{"step": s, "loss": 1.0 / s, "samples": 4, "samples_per_s": 2.0, "tokens": 400} for s in (1, 2, 3)]
    (run / "train/metrics.jsonl").write_text("".join(json.dumps(s) + "\n" for s in steps))
    row = summary("plain", run)
    assert row["targets"] == "plain" and row["generate"]["items"] == 4
    assert row["train"] == {"steps": 3, "perception_steps": 0, "train_s": 6.0, "final_loss": 1 / 3,
                            "tokens_per_sample": 100}
    bench = row["benchmarks"]["embedded-eval"]
    assert bench["chance"] == (1 / 2 + 1 / 4) / 2
    assert bench["question_prior"] == (1 / 2 + 1 / 4) / 2  # "high" ties "low": half a point; unseen: 1/options
    assert bench["groups"] == {"AQA-MCQ": 0.5}
    assert main([str(run), "--out", str(tmp_path / "c")]) == 0
    assert json.loads((tmp_path / "c" / "compare.json").read_text())["variants"][0]["benchmarks"] == row["benchmarks"]
    (run / "train/perception").mkdir()  # a perception stage: its steps shown first, its time counted
    (run / "train/perception/metrics.jsonl").write_text("".join(json.dumps(s) + "\n" for s in steps[:2]))
    row = summary("plain", run)
    assert row["train"]["perception_steps"] == 2 and row["train"]["train_s"] == 10.0
    assert row["train"]["final_loss"] == 1 / 3 and row["train"]["tokens_per_sample"] == 100
    assert "| plain | plain | 4 / 4 |" in table([row]) and "| 2 + 3 | 10 s |" in table([row])
