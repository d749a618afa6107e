"""The recipe reference: every registered component's config fields with type, default and meaning.

A field's meaning is the ``#:`` comment on the line(s) right above it in its msgspec Struct (or a
``msgspec.Meta(description=...)`` on its annotation). ``afcot docs recipes`` writes the page.
"""

from __future__ import annotations

import ast
import enum
import importlib.metadata as md
import inspect
import textwrap
import types
import typing
from dataclasses import dataclass
from typing import Any

import msgspec

from afcot_core.api import GROUP, ROLES, Plugins, Registration, RunSection, is_builtin

#: where a component of each role is named in a recipe
TABLE_OF_ROLE = {
    "source": "[generate.source]",
    "teacher_alm": "[generate.alm], [evaluate.model]",
    "teacher_llm": "[generate.llm]",
    "strategy": "[generate.strategies.aqa], [generate.strategies.classification]",
    "validator": "[[generate.validators]]",
    "sink": "[generate.sink]",
    "negative_sampler": "`afcot negatives ... --sampler NAME` and the components that draw wrong options",
    "trainer": "[train]",
    "benchmark": "[[evaluate.benchmarks]]",
}


@dataclass(frozen=True)
class Field:
    """One config field as the reference shows it."""

    name: str
    type: str
    default: str
    meaning: str


def comments(cls: type) -> dict[str, str]:
    """The ``#:`` comment above each annotated field of ``cls`` and of its Struct bases."""
    found: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if klass in (object, msgspec.Struct) or not issubclass(klass, msgspec.Struct):
            continue
        try:
            lines, _ = inspect.getsourcelines(klass)
        except (OSError, TypeError):
            continue
        body = ast.parse(textwrap.dedent("".join(lines))).body[0]
        assert isinstance(body, ast.ClassDef)
        for node in body.body:
            if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                above: list[str] = []
                i = node.lineno - 2
                while i >= 0 and lines[i].strip().startswith("#:"):
                    above.insert(0, lines[i].strip()[2:].strip())
                    i -= 1
                if above:
                    found[node.target.id] = " ".join(above)
    return found


def type_name(hint: Any) -> str:
    """A short readable spelling of a type hint: ``int``, ``str | None``, ``list[str]``, ``"a" | "b"``."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin is typing.Annotated:
        return type_name(args[0])
    if origin is typing.Literal:
        return " | ".join(f'"{a}"' if isinstance(a, str) else repr(a) for a in args)
    if origin in (typing.Union, types.UnionType):
        return " | ".join(type_name(a) for a in args)
    if origin is not None:
        name = getattr(origin, "__name__", str(origin))
        return f"{name}[{', '.join(type_name(a) for a in args)}]" if args else name
    if hint is type(None):
        return "None"
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return " | ".join(f'"{m.value}"' for m in hint)
    if isinstance(hint, type) and issubclass(hint, msgspec.Struct):
        return f"table ({hint.__name__})"
    return getattr(hint, "__name__", str(hint))


def toml_value(value: Any) -> str:
    """A default as it would be written in a recipe."""
    if value is None:
        return "unset"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, enum.Enum):
        return toml_value(value.value)
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, msgspec.Struct):
        value = msgspec.to_builtins(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k} = {toml_value(v)}" for k, v in value.items()) + "}"
    return repr(value)


def _meta_description(hint: Any) -> str:
    if typing.get_origin(hint) is typing.Annotated:
        for meta in typing.get_args(hint)[1:]:
            if isinstance(meta, msgspec.Meta) and meta.description:
                return meta.description
    return ""


def fields(config: type[msgspec.Struct]) -> list[Field]:
    """The reference rows of a config type, in declaration order."""
    hints = typing.get_type_hints(config, include_extras=True)
    meanings = comments(config)
    rows = []
    for info in msgspec.structs.fields(config):
        if info.default is not msgspec.NODEFAULT:
            default = toml_value(info.default)
        elif info.default_factory is not msgspec.NODEFAULT:
            default = toml_value(info.default_factory())
        else:
            default = "required"
        hint = hints.get(info.name, info.type)
        meaning = meanings.get(info.name) or _meta_description(hint)
        rows.append(Field(info.encode_name, type_name(hint), default, meaning))
    return rows


def builtin_plugins() -> set[str]:
    """Entry-point names of the plugins shipped in the afcot distribution itself."""
    return {ep.name for ep in md.entry_points(group=GROUP) if is_builtin(ep)}


def builtin_registrations(plugins: Plugins, everything: bool = False) -> list[Registration]:
    """Every built-in component (every loaded one with ``everything``), by role then name."""
    mine = builtin_plugins()
    return [plugins.registry(role).get(name) for role in ROLES for name in plugins.registry(role).names()
            if everything or plugins.registry(role).get(name).plugin in mine]


def stage_tables(plugins: Plugins) -> dict[str, type[msgspec.Struct]]:
    """The recipe's own tables: ``[run]`` and the settings of each registered stage that has some."""
    tables: dict[str, type[msgspec.Struct]] = {"[run]": RunSection}
    for name in plugins.stage_names():
        settings = getattr(plugins.stages[name].stage, "settings", None)
        if settings is not None:
            tables[f"[{name}]"] = settings
    return tables


def missing_meanings(plugins: Plugins) -> list[str]:
    """``Config.field`` of every built-in config field without a meaning."""
    configs = [*stage_tables(plugins).values(), *(r.config for r in builtin_registrations(plugins))]
    configs += nested(configs)
    return sorted({f"{c.__module__}.{c.__qualname__}.{f.name}" for c in configs for f in fields(c) if not f.meaning})


def _escape(text: str) -> str:
    return text.replace("``", "`").replace("|", "\\|").replace("\n", " ")


def nested(configs: list[type[msgspec.Struct]]) -> list[type[msgspec.Struct]]:
    """Struct types used as the values of fields of ``configs`` (sub-tables such as ``batching``), sorted."""
    found: dict[str, type[msgspec.Struct]] = {}

    def visit(hint: Any) -> None:
        if isinstance(hint, type) and issubclass(hint, msgspec.Struct):
            if hint.__qualname__ not in found:
                found[hint.__qualname__] = hint
                for sub in typing.get_type_hints(hint).values():
                    visit(sub)
            return
        for arg in typing.get_args(hint):
            visit(arg)

    for config in configs:
        for hint in typing.get_type_hints(config).values():
            visit(hint)
    return [found[name] for name in sorted(found)]


def _table(config: type[msgspec.Struct]) -> list[str]:
    rows = fields(config)
    if not rows:
        return ["No keys besides `use`.", ""]
    out = ["| key | type | default | meaning |", "|---|---|---|---|"]
    for f in rows:
        out.append(f"| `{f.name}` | `{_escape(f.type)}` | `{_escape(f.default)}` | {_escape(f.meaning)} |")
    return [*out, ""]


def render(plugins: Plugins, everything: bool = False) -> str:
    """The reference page as Markdown: the built-in components, or with ``everything`` every loaded one."""
    which = "every loaded component" if everything else "the built-in components"
    out = ["# Recipe reference", "",
           f"Generated by `afcot docs recipes` from the config types of {which}; do not edit by",
           "hand. A component table names its component with `use = \"name\"`; its other keys are listed below.",
           "Unknown keys are refused. See `recipes.md` for how a recipe is put together.", ""]
    out += ["## Core tables", ""]
    for table, config in stage_tables(plugins).items():
        out += [f"### `{table}`", "", *_table(config)]
    registrations = builtin_registrations(plugins, everything)
    for role in ROLES:
        regs = [r for r in registrations if r.role == role]
        if not regs:
            continue
        out += [f"## {role}", "", f"Named in {TABLE_OF_ROLE.get(role, 'a recipe')}.", ""]
        for r in regs:
            out += [f"### `{r.name}`", "", f"{r.description} (plugin `{r.plugin}`, config `{r.config.__name__}`)", "",
                    *_table(r.config)]
    subtables = nested([*stage_tables(plugins).values(), *(r.config for r in registrations)])
    if subtables:
        out += ["## Sub-tables", "", "Config values that are tables themselves (`type` column: `table (Name)`).", ""]
        for config in subtables:
            out += [f"### `{config.__name__}`", "", *_table(config)]
    return "\n".join(out).rstrip() + "\n"
