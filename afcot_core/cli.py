"""The ``afcot`` command line. Exit codes: 0 ok, 1 failure, 2 bad input.

Every command, a plugin's included, runs inside :func:`main`, which turns errors into exit codes and
messages; a reader of its output that goes away (``afcot ... | head``) makes it drop the rest, quietly.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import afcot_core
from afcot_core import streams
from afcot_core.errors import BadInput


def _plugins() -> Any:
    from afcot_core import plugins

    return plugins.default()


def _stages(value: str | None) -> list[str] | None:
    """``--stages a,b``: the named stages; None when the option is not given; an empty list is refused."""
    if value is None:
        return None
    stages = [s.strip() for s in value.split(",") if s.strip()]
    if not stages:
        raise BadInput(f"--stages {value!r}: names no stage; give a comma-separated subset of generate,train,evaluate")
    return stages


def out_folder(value: str, option: str = "--out") -> Path:
    """The folder an ``--out`` option names: it may not exist yet, but it may not be a file."""
    path = Path(value)
    if path.exists() and not path.is_dir():
        raise BadInput(f"{option} {path}: is a file, not a folder")
    return path


def _recipe(args: argparse.Namespace) -> Any:
    from afcot_core import recipe

    return recipe.load(args.file, _plugins(), args.set)


def cmd_plugins_list(args: argparse.Namespace) -> int:
    from afcot_core.registry import ROLES

    plugins = _plugins()
    if args.json:
        print(json.dumps({role: plugins.registry(role).names() for role in ROLES}, indent=2))
        return 0
    for role in ROLES:
        print(f"{role}:")
        for name in plugins.registry(role).names():
            reg = plugins.registry(role).get(name)
            print(f"  {name:<28} {reg.description}  [{reg.plugin}]")
    if plugins.commands:
        print("commands:")
        for name, command in sorted(plugins.commands.items()):
            print(f"  {name:<28} {command.help}  [{command.plugin}]")
    return 0


def cmd_recipe_validate(args: argparse.Namespace) -> int:
    from afcot_core.runner import variants

    recipe = _recipe(args)
    count = sum(len(section.components()) for section in recipe.stages.values())
    named = f"; variants {', '.join(variants(recipe, _plugins()))}" if "variants" in recipe.data else ""
    print(f"{args.file}: ok ({', '.join(recipe.stages)}; {count} components{named})")
    return 0


def cmd_recipe_plan(args: argparse.Namespace) -> int:
    from afcot_core import runner

    recipe, stages, out = _recipe(args), _stages(args.stages), out_folder(args.out) if args.out else None
    doc = runner.plan_document(recipe, stages, out)
    print(json.dumps(doc, indent=2) if args.json else runner.plan(doc))
    return 2 if doc["missing"] else 0  # a run would be refused: bad input, as `recipe run` says


def cmd_recipe_run(args: argparse.Namespace) -> int:
    from afcot_core import runner

    out = out_folder(args.out) if args.out else None
    recipe = _recipe(args)
    if out is None and recipe.run.out:
        out_folder(recipe.run.out, option=f"{recipe.path}: [run] out =")
    result = runner.run(recipe, _plugins(), out, _stages(args.stages), show_progress=not args.quiet)
    stats_md = Path(result["out"]) / "generate" / "stats.md"
    if "generate" in result and not args.quiet and stats_md.exists():  # the run statistics, for people
        print(stats_md.read_text(encoding="utf-8"), file=sys.stderr)
    compare_md = Path(result["out"]) / "compare.md"
    if "variants" in result and not args.quiet and compare_md.exists():  # the variants side by side
        print(compare_md.read_text(encoding="utf-8"), file=sys.stderr)
    print(json.dumps(result, indent=2))
    return 0


def build_parser(plugins: Any | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="afcot", description="Chain-of-thought data, finetuning and "
                                     "evaluation for audio language models.")
    parser.add_argument("--version", action="version", version=f"afcot {afcot_core.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("plugins", help="list plugins and their components")
    psub = p.add_subparsers(dest="action", required=True)
    pl = psub.add_parser("list", help="list registered components by role")
    pl.add_argument("--json", action="store_true", help="print an object mapping each role to its names")
    pl.set_defaults(func=cmd_plugins_list)

    r = sub.add_parser("recipe", help="validate, plan or run a TOML recipe")
    rsub = r.add_subparsers(dest="action", required=True)
    for name, func, helptext in (("validate", cmd_recipe_validate, "check a recipe without running it"),
                                 ("plan", cmd_recipe_plan, "show what a run would do and what is missing"),
                                 ("run", cmd_recipe_run, "run a recipe's stages into a run directory")):
        a = rsub.add_parser(name, help=helptext)
        a.add_argument("file", help="recipe TOML file, or the name of a built-in recipe (afcot recipe list)")
        a.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a recipe value, e.g. generate.source.items=50")
        if name != "validate":
            a.add_argument("--stages", help="comma-separated subset of generate,train,evaluate")
            a.add_argument("--out", help="run directory (default: [run].out or runs/<name>)")
        if name == "run":
            a.add_argument("--quiet", action="store_true", help="no progress bar or console log")
        if name == "plan":
            a.add_argument("--json", action="store_true", help="print the plan as JSON (estimates with figures)")
        a.set_defaults(func=func)

    groups = {"plugins": psub, "recipe": rsub}
    for command in (plugins.commands.values() if plugins else []):
        _add_command(sub, groups, command)
    return parser


def _add_command(sub: Any, groups: dict[str, Any], command: Any) -> None:
    """Add a plugin's command (``"recipe list"`` joins the ``recipe`` group); one that clashes with a built-in,
    names no group of afcot's or fails to configure is left out with a warning."""
    group, _, action = command.name.partition(" ")
    if action and group not in groups:
        print(f"warning: plugin '{command.plugin}': command '{command.name}' left out: afcot has no command group "
              f"'{group}' (groups: {', '.join(groups)})", file=sys.stderr)
        return
    sub = groups[group] if action else sub
    if (action or command.name) in sub.choices:
        print(f"warning: plugin '{command.plugin}': command '{command.name}' refused: afcot has its own",
              file=sys.stderr)
        return
    trial = argparse.ArgumentParser(prog=f"afcot {command.name}")
    try:
        command.configure(trial)
    except BaseException as exc:  # a broken plugin must not take the other commands down
        if isinstance(exc, KeyboardInterrupt):
            raise
        print(f"warning: plugin '{command.plugin}': command '{command.name}' left out: "
              f"{type(exc).__name__} while configuring: {exc}", file=sys.stderr)
        return
    c = sub.add_parser(action or command.name, help=command.help)
    command.configure(c)
    c.set_defaults(func=command.run)


def main(argv: list[str] | None = None) -> int:
    """Run one command; its exit code. Bad input (a :class:`BadInput`, or a path of the wrong kind) exits 2.

    A reader of stdout or stderr that goes away (``| head``) ends nothing: later output is dropped, and the
    command finishes with its own exit code.
    """
    with streams.forgiving():
        return _run(sys.argv[1:] if argv is None else argv)


def _run(argv: list[str]) -> int:
    try:
        return _dispatch(argv)
    except BadInput as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (FileExistsError, IsADirectoryError, NotADirectoryError) as exc:
        print(f"error: {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: finished shards are kept, the next run goes on from there", file=sys.stderr)
        return 130
    except Exception as exc:
        print(f"failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


def _dispatch(argv: list[str]) -> int:
    plugins = None if argv[:1] in (["--version"],) else _plugins()
    for warning in plugins.warnings() if plugins else []:
        print(f"warning: {warning}", file=sys.stderr)
    parser = build_parser(plugins)
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
