"""What a new user meets in the first hour (issue 21): the README's commands, a run's output from its first second,
other libraries kept out of it, messages that point the right way, and docs that say what is so."""

import json
import re
import shlex
from datetime import datetime

import pytest

from afcot_core import cli, recipe
from afcot_core.progress import Bar
from afcot_core.shards import ShardCounts

from .conftest import QUICKSTART, ROOT, afcot

#: what other libraries print on their own: tqdm bars (transformers' "Loading weights", "Writing model shards")
#: and accelerate's warning through Python's logging
FOREIGN = ("Loading weights", "Writing model shards", "Removed shared tensor", "[RANK 0]", "it/s]")


def _events(out):
    return [json.loads(line) for line in (out / "logs" / "run.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("quiet", [False, True])
def test_a_run_shows_no_output_of_other_libraries_and_train_speaks_from_its_first_second(tmp_path, quiet):
    out = tmp_path / "run"
    result = afcot("recipe", "run", "quickstart", "--out", str(out), "--set", "generate.source.items=50",
                   *(["--quiet"] if quiet else []))
    assert result.returncode == 0, result.stderr
    shown = result.stdout + result.stderr
    assert [f for f in FOREIGN if f in shown] == [], shown
    if quiet:
        assert result.stderr == ""
    else:  # the first line comes before the checks, which take seconds (the memory plan builds the model)
        assert result.stderr.splitlines()[0] == "quickstart: checking the inputs and plan of generate, train, evaluate"
    events = _events(out)
    names = [e["event"] for e in events]
    start = names.index("stage started", names.index("stage finished"))  # the train stage's
    assert events[start]["stage"] == "train" and names[start + 1] == "building the model"
    seconds = (datetime.fromisoformat(events[start + 1]["timestamp"])
               - datetime.fromisoformat(events[start]["timestamp"])).total_seconds()
    assert seconds < 1.0  # said before anything slow (torch, the model) is imported
    train = names[start:names.index("stage finished", start)]
    assert train.index("waiting for the first batch") < train.index("first batch") < train.index("train step")


def test_warnings_of_other_libraries_go_into_the_run_log(tmp_path):
    import logging

    from afcot_core import log

    with log.run_log(tmp_path / "run.jsonl", quiet=True):
        logging.getLogger("accelerate.utils.other").warning("[RANK 0] Removed shared tensor {'x'} while saving")
    (event,) = [json.loads(line) for line in (tmp_path / "run.jsonl").read_text().splitlines()]
    assert event["level"] == "warning" and "Removed shared tensor" in event["event"]


def _readme_runs(text):
    """``(recipe, --set values, out folder)`` of every ``afcot recipe run`` in the README's command blocks."""
    runs = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.DOTALL):
        for line in block.splitlines():
            words = shlex.split(line.split("  #")[0].split("&&")[-1])
            if words[:3] != ["afcot", "recipe", "run"]:
                continue
            sets = [words[i + 1] for i, w in enumerate(words) if w == "--set"]
            given = [words[i + 1] for i, w in enumerate(words) if w == "--out"]
            runs.append((words[3], sets, given[0] if given else f"runs/{words[3]}"))
    return runs


def test_the_readme_commands_run_in_order_never_share_a_run_folder_between_different_recipes():
    runs = _readme_runs((ROOT / "README.md").read_text(encoding="utf-8"))
    assert len(runs) >= 2
    first: dict[str, tuple[str, list[str]]] = {}
    for name, sets, out in runs:
        # a run folder holds one recipe: the same recipe with other --set values is refused there
        assert first.setdefault(out, (name, sets)) == (name, sets), f"{out}: {first[out]} and then {(name, sets)}"


def test_the_readme_says_what_the_install_costs_and_how_to_keep_cuda_out():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "download.pytorch.org/whl/cpu" in text and "5-6 minutes" in text


def test_a_typo_in_set_gets_a_suggestion_and_the_sub_tables_are_listed(plugins):
    with pytest.raises(Exception, match=r"unknown key 'sorce' \(did you mean 'source'\?\)"):
        recipe.load(QUICKSTART, plugins, ["generate.sorce.items=5"])
    with pytest.raises(Exception, match=r"known keys: .*source, alm, llm, strategies, validators, sink"):
        recipe.load(QUICKSTART, plugins, ["generate.zzzzzz=5"])


def test_export_into_a_file_says_it_is_a_file_not_a_folder(tmp_path, capsys):
    taken = tmp_path / "taken.json"
    taken.write_text("{}")
    assert cli.main(["export", str(tmp_path), "--out", str(taken)]) == 2
    assert f"--out {taken}: is a file, not a folder" in capsys.readouterr().err


def test_the_progress_line_in_a_file_is_one_whole_line(capsys):
    with Bar("generate", 200, enabled=True) as bar:
        bar.advance(ShardCounts(accepted=140, rejected=10), shards=3)
        for _ in range(50):
            bar.record("accepted")
    err = capsys.readouterr().err
    line = next(line for line in err.splitlines() if line.startswith("generate"))
    assert "…" not in err and "━" not in err
    assert re.fullmatch(r"generate 200/200 [\d.]+ it/s ✓190 ✗10 !0 \(3 shards done before\)", line), line


def test_the_docs_say_what_is_so():
    recipes = (ROOT / "docs" / "recipes.md").read_text(encoding="utf-8")
    assert "not part of this release" not in recipes and "about 2 s" not in recipes
    interop = (ROOT / "docs" / "interop.md").read_text(encoding="utf-8")
    assert "fails on a machine without it" in " ".join(interop.split())
    assert "first-run.md" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_plugin_guide_lists_every_name_of_the_public_face():
    import afcot_core.api as api

    guide = (ROOT / "docs" / "writing-a-plugin.md").read_text(encoding="utf-8")
    assert [n for n in api.__all__ if f"`{n}`" not in guide] == []
    assert "from afcot_core.hookspecs" not in guide and "afcot_core.errors." not in guide


@pytest.mark.parametrize("command", ["run", "plan"])
def test_a_malformed_manifest_line_is_bad_input_and_not_a_missing_input(tmp_path, capsys, command):
    manifest = tmp_path / "items.jsonl"
    manifest.write_text('{"id": "a", "audio": "a.wav", "question": "What?", "answer": "x"}\n{"id": "b", oops\n')
    source = f'generate.source={{use = "manifest", path = "{manifest}"}}'
    code = cli.main(["recipe", command, "quickstart", "--stages", "generate", "--out", str(tmp_path / "run"),
                     "--set", source])
    captured = capsys.readouterr()
    assert code == 2
    assert f"{manifest}:2: JSON is malformed" in captured.err
    assert "missing" not in captured.out + captured.err
    assert not (tmp_path / "run").exists()
