"""``plugins new``, ``recipe list``, ``recipe show``, ``docs recipes``, ``docs commands`` and ``inspect``, registered
through the ``commands`` hook like any plugin's."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from afcot_core.api import BadInput, default_plugins, recipe_names, recipe_path


def recipe_summary(name: str) -> str:
    """The first sentence of a built-in recipe's opening comment (over as many lines as it takes): what it does."""
    words: list[str] = []
    for line in recipe_path(name).read_text(encoding="utf-8").splitlines():
        body = line.removeprefix("#")
        if not line.startswith("#") or not body.strip() or body.startswith("   "):  # a command example ends it
            break
        words.append(body.strip())
    text = " ".join(words)
    end = text.find(". ")
    return text[: end + 1] if end >= 0 else text


def _recipe_list(args: argparse.Namespace) -> int:
    for name in recipe_names():  # one line each: the recipe's whole first sentence
        print(f"{name:<24} {recipe_summary(name)}")
    return 0


def _recipe_show(args: argparse.Namespace) -> int:
    sys.stdout.write(recipe_path(args.name).read_text(encoding="utf-8"))
    return 0


def _docs(args: argparse.Namespace) -> int:
    from afcot_devtools import command_reference, reference

    plugins = default_plugins()
    if args.action == "commands":
        from afcot_core.api import build_parser

        text = command_reference.render(build_parser(plugins if args.all else command_reference.builtin_only(plugins)))
    else:
        text = reference.render(plugins, everything=args.all)
    if args.out == "-":
        sys.stdout.write(text)
        return 0
    out = Path(args.out)
    if out.is_dir():
        raise BadInput(f"{out}: is a folder; give the Markdown file to write")
    if not out.parent.is_dir():
        raise BadInput(f"{out}: its folder {out.parent} does not exist")
    out.write_text(text, encoding="utf-8")
    print(f"wrote {out}")
    return 0


def _plugins_new(args: argparse.Namespace) -> int:
    from afcot_devtools import scaffold

    target = scaffold.create(args.name, args.role, Path(args.dir))
    print(f"created {target}")
    print(f"next: pip install -e {target} && afcot plugins list && pytest {target}")
    return 0


def _inspect(args: argparse.Namespace) -> int:
    from afcot_devtools.inspect import describe

    print(json.dumps(describe(Path(args.path)), indent=2, ensure_ascii=False))
    return 0


def _new_options(p: argparse.ArgumentParser) -> None:
    from afcot_devtools.scaffold import ROLES

    p.add_argument("name", help="plugin name, e.g. my-checks (the package becomes afcot-my-checks)")
    p.add_argument("--role", choices=ROLES, default="validator", help="role of its example component")
    p.add_argument("--dir", default=".", help="folder to create the package in (default: here)")


def _show_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="built-in recipe name, e.g. quickstart")


def _docs_options(p: argparse.ArgumentParser) -> None:
    dsub = p.add_subparsers(dest="action", required=True)
    dr = dsub.add_parser("recipes", help="write the recipe reference: every component's config fields")
    dr.add_argument("--out", default="docs/recipe-reference.md", help="Markdown file to write, or - for stdout")
    dr.add_argument("--all", action="store_true", help="document every installed plugin, not only the built-ins")
    dc = dsub.add_parser("commands", help="write the command reference: every command's arguments")
    dc.add_argument("--out", default="docs/command-reference.md", help="Markdown file to write, or - for stdout")
    dc.add_argument("--all", action="store_true", help="document every installed plugin's commands, not only the "
                    "built-ins'")


def _inspect_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", help="run directory or shard")


#: (name, help, configure(parser), run(args)) of each command
COMMANDS = (
    ("plugins new", "create a plugin package to start from", _new_options, _plugins_new),
    ("recipe list", "list the built-in recipes", lambda p: None, _recipe_list),
    ("recipe show", "print a built-in recipe (to copy and edit)", _show_options, _recipe_show),
    ("docs", "generate reference documentation", _docs_options, _docs),
    ("inspect", "summarise a run directory or a shard", _inspect_options, _inspect),
)
