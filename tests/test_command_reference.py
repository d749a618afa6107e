"""The command reference is read from the CLI's own parser, complete, and never stale."""

import argparse

from afcot_devtools import command_reference

from afcot_core import cli
from afcot_core.plugins import Command

from .conftest import ROOT, run_cli

PAGE = ROOT / "docs" / "command-reference.md"


def test_the_committed_page_is_current(plugins):
    """Regenerate with: afcot docs commands. Every help text, choice, default and metavar of every command is on
    the page, so a change to any of them without the page fails here."""
    page = command_reference.render(cli.build_parser(command_reference.builtin_only(plugins)))
    assert PAGE.read_text(encoding="utf-8") == page, "stale: run `afcot docs commands`"


def test_every_command_that_runs_something_has_a_section(plugins):
    words = [" ".join(w) for w, _, _ in command_reference.commands(cli.build_parser(plugins))]
    assert words[:3] == ["plugins list", "plugins new", "recipe validate"]
    for name in ("recipe run", "export", "negatives build", "bench score", "docs commands", "report", "audit"):
        assert name in words
    assert "recipe" not in words and "docs" not in words  # groups are not commands


def test_a_table_shows_values_defaults_requirements_and_repeats():
    parser = argparse.ArgumentParser()
    parser.add_argument("source", help="where | from")
    parser.add_argument("--format", choices=["a", "b"], default="a", help="which\none")
    parser.add_argument("--out", required=True, metavar="DIR")
    parser.add_argument("--set", action="append", default=[], help="a value")
    parser.add_argument("--quiet", action="store_true", help="say less")
    parser.add_argument("--limit", type=int, default=3)
    parser.add_argument("rest", nargs="?", default="x")
    assert command_reference._table(parser) == [
        "| argument | value | default | meaning |", "|---|---|---|---|",
        "| `source` | `SOURCE` | required | where \\| from |",
        "| `--format` | `a` \\| `b` | `a` | which one |",
        "| `--out` | `DIR` | required |  |",
        "| `--set` | `SET` |  | a value (repeatable) |",
        "| `--quiet` |  |  | say less |",
        "| `--limit` | `LIMIT` | `3` |  |",
        "| `rest` | `REST` | `x` |  |", ""]
    assert command_reference._table(argparse.ArgumentParser()) == ["No arguments.", ""]


def test_only_the_built_in_commands_unless_every_one_is_asked_for(plugins):
    plugins.commands["mine"] = Command("mine", "an outside command", lambda p: None, lambda a: 0, "outside")
    try:
        assert "## `afcot mine`" not in command_reference.render(
            cli.build_parser(command_reference.builtin_only(plugins)))
        assert "## `afcot mine`\n\nan outside command.\n\nNo arguments." in command_reference.render(
            cli.build_parser(plugins))
    finally:
        del plugins.commands["mine"]


def test_cli_writes_the_page(tmp_path, capsys):
    out = tmp_path / "commands.md"
    code, stdout, _ = run_cli(capsys, "docs", "commands", "--out", str(out))
    assert code == 0 and stdout == f"wrote {out}\n"
    assert out.read_text(encoding="utf-8") == PAGE.read_text(encoding="utf-8")
    code, stdout, _ = run_cli(capsys, "docs", "commands", "--out", "-")
    assert code == 0 and stdout == PAGE.read_text(encoding="utf-8")
    code, _, err = run_cli(capsys, "docs", "commands", "--out", str(tmp_path))
    assert code == 2 and "is a folder" in err
