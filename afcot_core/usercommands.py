"""Commands for people outside the source tree: ``recipe list|show``, ``docs recipes``, ``plugins new``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from afcot_core.errors import BadInput


def cmd_recipe_list(args: argparse.Namespace) -> int:
    from afcot_core import catalog

    for name in catalog.names():
        print(f"{name:<24} {catalog.summary(name)}")
    return 0


def cmd_recipe_show(args: argparse.Namespace) -> int:
    from afcot_core import catalog

    sys.stdout.write(catalog.path(args.name).read_text(encoding="utf-8"))
    return 0


def cmd_docs_recipes(args: argparse.Namespace) -> int:
    from afcot_core import plugins, reference

    text = reference.render(plugins.default(), everything=args.all)
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


def cmd_plugins_new(args: argparse.Namespace) -> int:
    from afcot_core import scaffold

    target = scaffold.create(args.name, args.role, Path(args.dir))
    print(f"created {target}")
    print(f"next: pip install -e {target} && afcot plugins list && pytest {target}")
    return 0


def add(plugins_actions: argparse._SubParsersAction, recipe_actions: argparse._SubParsersAction,
        commands: argparse._SubParsersAction) -> None:
    """Add these commands to the ``plugins`` and ``recipe`` groups and the top level of the parser."""
    from afcot_core.scaffold import ROLES

    n = plugins_actions.add_parser("new", help="create a plugin package to start from")
    n.add_argument("name", help="plugin name, e.g. my-checks (the package becomes afcot-my-checks)")
    n.add_argument("--role", choices=ROLES, default="validator", help="role of its example component")
    n.add_argument("--dir", default=".", help="folder to create the package in (default: here)")
    n.set_defaults(func=cmd_plugins_new)

    ls = recipe_actions.add_parser("list", help="list the built-in recipes")
    ls.set_defaults(func=cmd_recipe_list)
    show = recipe_actions.add_parser("show", help="print a built-in recipe (to copy and edit)")
    show.add_argument("name", help="built-in recipe name, e.g. quickstart")
    show.set_defaults(func=cmd_recipe_show)

    d = commands.add_parser("docs", help="generate reference documentation")
    dsub = d.add_subparsers(dest="action", required=True)
    dr = dsub.add_parser("recipes", help="write the recipe reference: every component's config fields")
    dr.add_argument("--out", default="docs/recipe-reference.md", help="Markdown file to write, or - for stdout")
    dr.add_argument("--all", action="store_true", help="document every installed plugin, not only the built-ins")
    dr.set_defaults(func=cmd_docs_recipes)
