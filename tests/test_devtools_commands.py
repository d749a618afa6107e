"""The developer commands as a user types them: their options and defaults, what they print, and their refusals."""

import json

import pytest
from afcot_devtools import reference
from afcot_devtools.commands import recipe_summary
from afcot_devtools.inspect import describe

from afcot_core import cli
from afcot_core.api import recipe_names, recipe_path

from .conftest import parse_cli, run_cli


def test_the_options_and_their_defaults(plugins):
    new = parse_cli(plugins, "plugins", "new", "my-checks")
    assert (new.name, new.role, new.dir) == ("my-checks", "validator", ".")
    new = parse_cli(plugins, "plugins", "new", "x", "--role", "teacher_alm", "--dir", "/tmp/p")
    assert (new.name, new.role, new.dir) == ("x", "teacher_alm", "/tmp/p")
    docs = parse_cli(plugins, "docs", "recipes")
    assert (docs.action, docs.out, docs.all) == ("recipes", "docs/recipe-reference.md", False)
    assert parse_cli(plugins, "docs", "recipes", "--all", "--out", "-").all is True
    assert parse_cli(plugins, "recipe", "show", "learn").name == "learn"
    assert parse_cli(plugins, "inspect", "runs/x").path == "runs/x"


@pytest.mark.parametrize("args, words", [
    ([], ["generate reference documentation", "summarise a run directory or a shard"]),
    (["plugins"], ["create a plugin package to start from"]),
    (["recipe"], ["list the built-in recipes", "print a built-in recipe (to copy and edit)"]),
    (["docs"], ["write the recipe reference: every component's config fields"]),
    (["plugins", "new"], ["--role {validator,teacher_llm,teacher_alm}", "role of its example component",
                          "folder to create the package in (default: here)",
                          "plugin name, e.g. my-checks (the package becomes afcot-my-checks)"]),
    (["docs", "recipes"], ["Markdown file to write, or - for stdout",
                           "document every installed plugin, not only the built-ins"]),
    (["recipe", "show"], ["built-in recipe name, e.g. quickstart"]),
    (["inspect"], ["run directory or shard"]),
])
def test_each_command_and_option_says_what_it_does(capsys, args, words):
    with pytest.raises(SystemExit):
        cli.main([*args, "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert all(word in text for word in words), text


def test_a_docs_command_without_its_action_is_refused(capsys):
    with pytest.raises(SystemExit) as exit:
        cli.main(["docs"])
    assert exit.value.code == 2 and "action" in capsys.readouterr().err


def test_recipe_list_gives_each_recipe_s_first_sentence_and_show_prints_it(capsys):
    code, out, _ = run_cli(capsys, "recipe", "list")
    assert code == 0 and out == "".join(f"{name:<24} {recipe_summary(name)}\n" for name in recipe_names())
    code, out, _ = run_cli(capsys, "recipe", "show", "learn")
    assert code == 0 and out == recipe_path("learn").read_text(encoding="utf-8")


def test_a_summary_is_the_whole_first_sentence_of_the_opening_comment(tmp_path, monkeypatch):
    import afcot_devtools.commands as commands

    recipe = tmp_path / "r.toml"
    monkeypatch.setattr(commands, "recipe_path", lambda name: recipe)
    recipe.write_text("#  One sentence\n# over two lines. And a second. And a third.\n[run]\n")
    assert recipe_summary("r") == "One sentence over two lines."
    recipe.write_text("# No full stop here\n#\n# A later paragraph.\n")
    assert recipe_summary("r") == "No full stop here"
    recipe.write_text("# Runs it:\n#   afcot recipe run r. Then more.\n")
    assert recipe_summary("r") == "Runs it:"
    recipe.write_text("[run]\n# a comment after the start. Not a summary.\n")
    assert recipe_summary("r") == ""


def test_docs_recipes_writes_the_reference_or_prints_it(capsys, tmp_path, plugins):
    page = tmp_path / "ref.md"
    code, out, _ = run_cli(capsys, "docs", "recipes", "--out", str(page))
    assert code == 0 and out == f"wrote {page}\n"
    assert page.read_text(encoding="utf-8") == reference.render(plugins)
    code, out, _ = run_cli(capsys, "docs", "recipes", "--out", "-")
    assert code == 0 and out == reference.render(plugins)
    code, out, _ = run_cli(capsys, "docs", "recipes", "--out", "-", "--all")
    assert code == 0 and out == reference.render(plugins, everything=True)


def test_docs_recipes_refuses_a_folder_or_a_missing_folder(capsys, tmp_path):
    code, _, err = run_cli(capsys, "docs", "recipes", "--out", str(tmp_path))
    assert code == 2 and f"{tmp_path}: is a folder; give the Markdown file to write" in err
    missing = tmp_path / "no" / "ref.md"
    code, _, err = run_cli(capsys, "docs", "recipes", "--out", str(missing))
    assert code == 2 and f"{missing}: its folder {missing.parent} does not exist" in err
    assert not (tmp_path / "no").exists()


def test_plugins_new_says_what_it_made_and_what_to_do_next(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "plugins", "new", "my-checks", "--dir", str(tmp_path))
    target = tmp_path / "afcot-my-checks"
    assert code == 0 and target.is_dir()
    assert out == (f"created {target}\n"
                   f"next: pip install -e {target} && afcot plugins list && pytest {target}\n")


def test_inspect_prints_what_it_describes_as_json(capsys, tmp_path):
    (tmp_path / "compare.json").write_text(json.dumps({"variants": [{"variant": "é"}]}))
    code, out, _ = run_cli(capsys, "inspect", str(tmp_path))
    assert code == 0 and json.loads(out) == describe(tmp_path)
    assert out == json.dumps(describe(tmp_path), indent=2, ensure_ascii=False) + "\n"
