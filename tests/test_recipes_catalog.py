"""The built-in recipes are package data, found by name from any folder; a path still wins over a name."""

import pytest
from afcot_devtools.commands import recipe_summary

from afcot_core import catalog, recipe
from afcot_core.errors import BadInput

from .conftest import QUICKSTART, run_cli

RECIPES = QUICKSTART.parent


def test_the_catalog_is_the_recipes_folder():
    # the same recipes, byte for byte (not the same path: a copy of the tree, as the mutation groups use, or a
    # worktree reads the package data of the checkout that is installed)
    shipped = {p.name: p.read_bytes() for p in catalog.folder().glob("*.toml")}
    assert shipped and shipped == {p.name: p.read_bytes() for p in RECIPES.glob("*.toml")}
    assert catalog.names() == sorted(p.stem for p in RECIPES.glob("*.toml"))
    assert recipe_summary("quickstart") == "The whole pipeline on the embedded world: no weights, no network."


def test_list_show_and_validate_by_name_from_another_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, listing, _ = run_cli(capsys, "recipe", "list")
    assert code == 0
    assert [line.split()[0] for line in listing.splitlines()] == catalog.names()
    assert run_cli(capsys, "recipe", "show", "quickstart")[1] == QUICKSTART.read_text(encoding="utf-8")
    code, out, err = run_cli(capsys, "recipe", "validate", "quickstart")
    assert code == 0, err
    assert out.startswith("quickstart: ok")


def test_unknown_names_exit_2_with_a_suggestion(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, _, err = run_cli(capsys, "recipe", "show", "quikstart")
    assert code == 2
    assert "unknown built-in recipe 'quikstart' (did you mean 'quickstart'?)" in err
    code, _, err = run_cli(capsys, "recipe", "run", "quickstrat")
    assert code == 2
    assert "quickstrat: recipe file not found (did you mean 'quickstart'?); built-in recipes:" in err
    code, _, err = run_cli(capsys, "recipe", "validate", "some/dir/quickstart.toml")
    assert code == 2 and "some/dir/quickstart.toml: recipe file not found" in err
    assert not (tmp_path / "runs").exists()


def test_a_file_wins_over_a_built_in_name(tmp_path, monkeypatch, plugins):
    mine = tmp_path / "quickstart.toml"
    mine.write_text(QUICKSTART.read_text().replace('name = "quickstart"', 'name = "mine"'))
    monkeypatch.chdir(tmp_path)
    assert catalog.resolve("quickstart.toml") == mine.relative_to(tmp_path)
    assert recipe.load("quickstart.toml", plugins).run.name == "mine"
    assert catalog.resolve("quickstart") == catalog.folder() / "quickstart.toml"
    with pytest.raises(BadInput, match="recipe file not found"):
        catalog.resolve("quickstart/")


def test_recipes_placeholder_names_the_shipped_data(tmp_path, monkeypatch, plugins):
    monkeypatch.chdir(tmp_path)
    parsed = recipe.load("quickstart", plugins, ["generate.source={use='manifest', "
                                                 "path='{recipes}/data/example_items.jsonl'}"])
    source = parsed.stages["generate"].source.config
    assert source.path == str(catalog.folder() / "data" / "example_items.jsonl")


@pytest.mark.parametrize("name", catalog.names())
def test_every_built_in_recipe_validates_from_any_folder(name, tmp_path, monkeypatch, plugins):
    monkeypatch.chdir(tmp_path)  # a recipe naming files relative to the source tree fails here
    recipe.load(name, plugins)


def test_the_fingerprint_does_not_depend_on_where_afcot_is_installed(tmp_path, monkeypatch, plugins):
    import shutil

    from afcot_core import runner

    here = runner.lock_document(recipe.load("af3_sound_cot", plugins), plugins)
    moved = tmp_path / "elsewhere" / "afcot_recipes"
    shutil.copytree(catalog.folder(), moved)
    monkeypatch.setattr(catalog, "folder", lambda: moved)
    there = runner.lock_document(recipe.load(moved / "af3_sound_cot.toml", plugins), plugins)
    assert there["recipe"]["generate"]["source"]["path"] == str(moved / "data" / "example_items.jsonl")
    assert there["fingerprint"] == here["fingerprint"]
    assert catalog.portable([{"p": str(moved / "a")}, str(moved), f"{moved}x/y"]) == [
        {"p": "{recipes}/a"}, "{recipes}", f"{moved}x/y"]


@pytest.mark.parametrize("name", catalog.names())
def test_recipe_list_gives_each_description_whole(name, capsys):
    """A description that goes on over several comment lines is given to the end of its first sentence."""
    code, listing, _ = run_cli(capsys, "recipe", "list")
    assert code == 0
    line = next(row for row in listing.splitlines() if row.split()[0] == name)
    assert line.rstrip().endswith((".", "?", ")")), line
    if name == "compare_bfs_dfs":
        assert line.endswith("on the same embedded AQA items, as the paper compares them.")
