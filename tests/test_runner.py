"""The runner's own promises, checked fast: stage choice, preflight, ``plan``, RANK / WORLD_SIZE, the layout of
``recipe.lock.toml`` and what it fingerprints, the run folder, and the run log's stage events."""

import hashlib
import json
import tomllib
from pathlib import Path

import pytest

import afcot_core
from afcot_core import recipe as recipes
from afcot_core import runner
from afcot_core.digest import digest
from afcot_core.errors import BadInput

from .conftest import QUICKSTART

TINY = ["generate.source.items=4", "generate.shard_size=4"]


def load(plugins, *sets: str):
    return recipes.load(QUICKSTART, plugins, [*TINY, *sets])


# choosing stages


def test_stages_default_to_the_recipe_and_are_put_in_pipeline_order(plugins):
    recipe = load(plugins)
    assert runner.select_stages(recipe, None) == ["generate", "train", "evaluate"]
    assert runner.select_stages(recipe, ["evaluate", "generate"]) == ["generate", "evaluate"]


def test_an_unknown_stage_is_named_with_the_stages_there_are(plugins):
    with pytest.raises(BadInput) as err:
        runner.select_stages(load(plugins), ["shard"])
    assert str(err.value) == "--stages: unknown stage 'shard'; stages: generate, train, evaluate"


def test_a_stage_without_its_section_names_the_recipe(plugins, tmp_path):
    path = tmp_path / "gen-only.toml"
    path.write_text(QUICKSTART.read_text().split("\n# Finetune the miniature")[0].replace(
        'stages = ["generate", "train", "evaluate"]', 'stages = ["generate"]'))
    with pytest.raises(BadInput) as err:
        runner.select_stages(recipes.load(path, plugins), ["train"])
    assert str(err.value) == f"--stages: the recipe {path} has no [train] section"


# the run folder


def test_the_run_folder_is_out_else_run_out_else_runs_name(plugins, tmp_path):
    recipe = load(plugins)
    assert runner.out_dir_of(recipe, tmp_path) == tmp_path
    assert runner.out_dir_of(recipe) == Path("runs") / "quickstart"
    assert runner.out_dir_of(load(plugins, f"run.out={tmp_path / 'x'}")) == tmp_path / "x"


# preflight and plan


def test_preflight_reports_every_missing_input_and_run_refuses_with_all_of_them(plugins, tmp_path):
    recipe = load(plugins, "train.model=/nonexistent/af3", "evaluate.model.model=/nonexistent/student")
    out = tmp_path / "run"
    problems = runner.preflight(recipe, ["train", "evaluate"], out)
    assert problems[0].startswith("[train]") and "/nonexistent/af3" in problems[0]
    assert problems[-1].startswith("[evaluate.model]") and "/nonexistent/student" in problems[-1]
    with pytest.raises(BadInput) as err:
        runner.run(recipe, plugins, out, stages=["train", "evaluate"], show_progress=False)
    assert str(err.value) == "cannot start, inputs are missing:\n  " + "\n  ".join(problems)
    assert not out.exists()


def test_preflight_looks_for_a_stage_left_out_in_the_run_folder(plugins, tmp_path):
    recipe = load(plugins)
    assert runner.preflight(recipe, ["generate", "train", "evaluate"], tmp_path) == []
    (missing,) = runner.preflight(recipe, ["evaluate"], tmp_path)
    assert str(tmp_path / "train" / "final") in missing


def test_plan_lists_each_stage_its_components_and_what_is_missing(plugins, tmp_path):
    recipe = load(plugins)
    lines = [f"recipe {QUICKSTART} (run 'quickstart', seed 0)"]
    for stage in ("generate", "train"):
        lines.append(f"stage {stage}:")
        for comp in recipe.stages[stage].components():
            reg = comp.registration
            lines.append(f"  [{comp.where}] {reg.role} '{reg.name}' ({reg.plugin}): {reg.description}")
            if comp.where == "train":  # each estimate under its component, its detail below it
                (memory,) = runner.estimates(recipe, ["train"], tmp_path)
                lines += [f"    {memory['text']}", f"    {memory['detail'].strip()}"]
    assert "  [generate.source] source 'embedded' (embedded): " in "\n".join(lines)
    assert "    train memory: " in "\n".join(lines)
    both = runner.plan_document(recipe, ["train", "generate"], tmp_path)
    assert runner.plan(both) == "\n".join([*lines, "all inputs present"])
    plan = runner.plan(runner.plan_document(recipe, ["evaluate"], tmp_path)).splitlines()
    assert plan[1] == "stage evaluate:" and "stage generate:" not in plan
    assert plan[-1] == "missing: " + runner.preflight(recipe, ["evaluate"], tmp_path)[0]



def test_plan_shows_each_variant_its_folder_stages_overrides_shared_items_and_what_it_lacks(plugins, tmp_path):
    from afcot_core.plugins import default

    path = tmp_path / "r.toml"
    path.write_text(Path(QUICKSTART).read_text() + '\n[variants.a]\n\n[variants.b]\n"train.max_steps" = 3\n'
                    '"evaluate.cot" = false\n\n[variants.c]\n"run.stages" = ["evaluate"]\n')
    out = tmp_path / "out"
    doc = runner.plan_document(recipes.load(path, default(), TINY), None, out)
    assert [(v["name"], v["out"], v["stages"], v["items_of"]) for v in doc["variants"]] == [
        ("a", str(out / "a"), ["generate", "train", "evaluate"], None),
        ("b", str(out / "b"), ["train", "evaluate"], "a"), ("c", str(out / "c"), ["evaluate"], "a")]
    (lack,) = doc["missing"]  # c evaluates a checkpoint its own folder lacks: named by the variant, in its folder
    assert lack.startswith("[variants.c] ") and str(out / "c" / "train" / "final") in lack
    text = runner.plan(doc).splitlines()
    assert text[-4:] == [f"variant a -> {out / 'a'} (generate, train, evaluate): the recipe as it is",
                         f"variant b -> {out / 'b'} (train, evaluate): train.max_steps = 3, evaluate.cot = False; "
                         "trains on the items of 'a'",
                         f"variant c -> {out / 'c'} (evaluate): run.stages = ['evaluate']; trains on the items of 'a'",
                         f"missing: {lack}"]
    chosen = runner.plan_document(recipes.load(path, default(), TINY), ["generate"], out)["variants"]
    assert [v["stages"] for v in chosen] == [["generate"], [], []]  # --stages holds for every variant


# RANK and WORLD_SIZE


def set_env(monkeypatch, rank: str | None, world: str | None) -> None:
    for name, value in (("RANK", rank), ("WORLD_SIZE", world)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)


@pytest.mark.parametrize(("rank", "world", "expected"), [
    (None, None, (0, 1)), ("0", "1", (0, 1)), ("1", "2", (1, 2)), ("0", "2", (0, 2)), ("3", "4", (3, 4))])
def test_rank_and_world_are_read_from_the_environment(monkeypatch, rank, world, expected):
    set_env(monkeypatch, rank, world)
    assert runner.rank_and_world() == expected


@pytest.mark.parametrize(("rank", "world", "message"), [
    ("1", None, "RANK=1 WORLD_SIZE=None: set both (torchrun and accelerate do) or neither"),
    (None, "2", "RANK=None WORLD_SIZE=2: set both (torchrun and accelerate do) or neither"),
    ("x", "2", "RANK='x' WORLD_SIZE='2': expected integers"),
    ("2", "2", "RANK=2 WORLD_SIZE=2: expected WORLD_SIZE >= 1 and 0 <= RANK < WORLD_SIZE"),
    ("-1", "2", "RANK=-1 WORLD_SIZE=2: expected WORLD_SIZE >= 1 and 0 <= RANK < WORLD_SIZE"),
    ("0", "0", "RANK=0 WORLD_SIZE=0: expected WORLD_SIZE >= 1 and 0 <= RANK < WORLD_SIZE")])
def test_a_wrong_rank_or_world_size_is_named(monkeypatch, rank, world, message):
    set_env(monkeypatch, rank, world)
    with pytest.raises(BadInput) as err:
        runner.rank_and_world()
    assert str(err.value) == message


# recipe.lock.toml and the fingerprint


def test_the_lock_document_holds_the_resolved_recipe_plugins_and_prompt_hashes(plugins):
    recipe = load(plugins)
    doc = runner.lock_document(recipe, plugins)
    assert list(doc) == ["fingerprint", "afcot", "recipe", "plugins", "prompts"]
    assert doc["afcot"] == {"version": afcot_core.__version__, "hook_api": afcot_core.HOOK_API}
    assert doc["recipe"] == {"run": {"name": "quickstart", "seed": 0, "stages": ["generate", "train", "evaluate"]},
                             **{stage: section.to_table() for stage, section in recipe.stages.items()}}
    regs = [c.registration for section in recipe.stages.values() for c in section.components()]
    assert doc["plugins"] == {p: plugins.versions[p] for p in sorted({r.plugin for r in regs})}
    assert all(doc["plugins"].values())
    prompts = {f"{r.name}/{k}": hashlib.sha256(t.encode()).hexdigest() for r in regs for k, t in r.prompts.items()}
    assert prompts and doc["prompts"] == dict(sorted(prompts.items())) and list(doc["prompts"]) == sorted(prompts)
    identity = {"seed": 0, **{stage: section.to_table() for stage, section in recipe.stages.items()},
                "generate": recipe.stages["generate"].identity_table()}
    assert "concurrency" in doc["recipe"]["generate"] and "concurrency" not in identity["generate"]
    body = {k: v for k, v in doc.items() if k != "fingerprint"}
    assert doc["fingerprint"] == digest({**body, "recipe": identity})


def test_the_fingerprint_follows_the_seed_and_the_configs_not_the_run_name(plugins):
    base = runner.lock_document(load(plugins), plugins)["fingerprint"]
    assert runner.lock_document(load(plugins, "run.name=renamed"), plugins)["fingerprint"] == base
    assert runner.lock_document(load(plugins, "run.seed=1"), plugins)["fingerprint"] != base
    assert runner.lock_document(load(plugins, "train.max_steps=13"), plugins)["fingerprint"] != base


def test_toml_has_no_null_so_none_values_are_dropped():
    assert runner._toml_safe({"a": None, "b": [1, None, {"c": None, "d": 2}], "e": "x"}) == {
        "b": [1, {"d": 2}], "e": "x"}


# a run


def stage_events(out: Path) -> list[dict]:
    lines = (out / "logs" / "run.jsonl").read_text().splitlines()
    return [e for e in map(json.loads, lines) if e["event"] in ("stage started", "stage finished")]


def test_a_run_writes_its_lock_file_logs_each_stage_and_returns_its_results(plugins, tmp_path, monkeypatch, capsys):
    set_env(monkeypatch, None, None)
    recipe = load(plugins)
    out = tmp_path / "deep" / "er" / "run"
    result = runner.run(recipe, plugins, out, stages=["generate"], show_progress=False)
    lock = runner.lock_document(recipe, plugins)
    assert result == {"out": str(out), "fingerprint": lock["fingerprint"], "generate": result["generate"]}
    assert result["generate"]["accepted"] + result["generate"]["rejected"] == 4
    assert tomllib.loads((out / "recipe.lock.toml").read_text(encoding="utf-8")) == runner._toml_safe(lock)
    started, finished = stage_events(out)
    assert started["stage"] == finished["stage"] == "generate"
    assert started["out"] == str(out) and started["run"] == finished["run"] == "quickstart"
    assert "rank" not in started
    assert isinstance(finished["seconds"], float) and finished["seconds"] == round(finished["seconds"], 2)
    assert 0 <= finished["seconds"] < 600
    assert "stage started" not in capsys.readouterr().err  # quiet when progress is off
    assert sorted(p.name for p in out.iterdir()) == [".lock-rank0", "generate", "logs", "recipe.lock.toml"]
    runner.run(recipe, plugins, out, stages=["generate"], show_progress=True)  # resumed: every shard is done
    assert "stage started" in capsys.readouterr().err


def test_a_run_without_out_goes_to_runs_name_and_a_rank_is_logged_in_a_job(plugins, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    set_env(monkeypatch, "1", "2")
    runner.run(load(plugins, "generate.source.items=8"), plugins, stages=["generate"], show_progress=False)
    out = tmp_path / "runs" / "quickstart"
    assert (out / ".lock-rank1").exists() and (out / "recipe.lock.toml").exists()
    assert [p.name for p in sorted((out / "generate").glob("shard-*.tar"))] == ["shard-000001.tar"]  # 1 of 2
    assert {e["rank"] for e in stage_events(out)} == {1}


def test_a_stage_sees_its_run_and_a_progress_bar_of_its_own(plugins, tmp_path):
    recipe = load(plugins, "run.seed=7")
    ctx = runner.RunContext(tmp_path, recipe, plugins, "f", None, show_progress=False, rank=1, world=2)
    bar = ctx.progress("generate", 12)
    assert (bar.name, bar.total, ctx.seed) == ("generate", 12, 7)
    assert bar._progress.disable and not bar._plain
    shown = runner.RunContext(tmp_path, recipe, plugins, "f", None).progress("x", None)
    assert shown._plain or not shown._progress.disable  # live in a terminal, else one plain line at the end
