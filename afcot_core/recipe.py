"""Recipes: TOML files that name registered components and their configs, validated before any work.

Every component table has a ``use`` key naming a registered component; its other keys are the
component's config, converted into the config type it registered. Errors name the TOML key path,
say what was expected and suggest the closest known name.
"""

from __future__ import annotations

import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from afcot_core.errors import BadInput
from afcot_core.plugins import Plugins
from afcot_core.registry import Registration, suggest


class MustExist:
    """Marks a config field as a path that must exist: ``Annotated[str, MustExist()]``."""


class RunSection(msgspec.Struct, forbid_unknown_fields=True):
    """The ``[run]`` table."""

    #: the run's name; the default run folder is ``runs/<name>``
    name: str = "run"
    #: the run seed: every sampled teacher request derives its own seed from it
    seed: int = 0
    #: the stages ``recipe run`` runs, in order, when ``--stages`` is not given (at least one)
    stages: list[str] = msgspec.field(default_factory=lambda: ["generate"])
    #: the run folder (default ``runs/<name>``; ``--out`` overrides it); ``{run}`` in other values means this folder
    out: str | None = None


@dataclass
class Component:
    """A validated component: its registration, typed config and TOML location."""

    where: str
    registration: Registration
    config: msgspec.Struct

    def build(self) -> Any:
        return self.registration.build(self.config)

    def preflight(self) -> list[str]:
        check = self.registration.preflight
        problems = check(self.config) if check else []
        return [f"[{self.where}] {p}" for p in problems]

    def plan(self) -> list[dict[str, Any]]:
        """The component's estimates for this recipe (what ``recipe plan`` prints), each naming its table."""
        check = self.registration.plan
        return [{**e, "where": self.where} for e in (check(self.config) if check else [])]

    def to_table(self) -> dict[str, Any]:
        return {"use": self.registration.name, **msgspec.to_builtins(self.config)}

    def identity_table(self) -> dict[str, Any]:
        """The table without the fields its config names in ``run_only`` (a ``ClassVar``): settings that change how
        a run goes (which servers, how many requests in flight) but not the data it makes. The fingerprint and the
        replay cache's teacher scope use this, so moving a run to other servers resumes it."""
        run_only: frozenset[str] = getattr(type(self.config), "run_only", frozenset())
        return {k: v for k, v in self.to_table().items() if k not in run_only}


@dataclass
class Recipe:
    """A validated recipe: the run section plus one parsed section per stage present."""

    path: Path
    data: dict[str, Any]
    run: RunSection
    stages: dict[str, Any] = field(default_factory=dict)
    #: every registered stage, in run order
    order: tuple[str, ...] = ()

    def components(self) -> list[Component]:
        found: list[Component] = []
        for section in self.stages.values():
            found += section.components()
        return found


def load_toml(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    if not p.is_file():
        raise BadInput(f"{p}: recipe file not found")
    try:
        return tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise BadInput(f"{p}: not valid TOML: {exc}") from None


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply ``a.b=c`` overrides; the value is read as a TOML value, else kept as a string."""
    for override in overrides:
        key, sep, raw = override.partition("=")
        if not sep or not key.strip():
            raise BadInput(f"--set {override!r}: expected KEY.PATH=VALUE")
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        node = data
        parts = key.strip().split(".")
        for i, part in enumerate(parts[:-1]):
            nxt = node.setdefault(part, {})
            if not isinstance(nxt, dict):
                raise BadInput(f"--set {override!r}: '{'.'.join(parts[: i + 1])}' is not a table")
            node = nxt
        node[parts[-1]] = value
    return data


def convert(table: Any, config_type: type[msgspec.Struct], where: str, tables: tuple[str, ...] = ()) -> msgspec.Struct:
    """Convert a TOML table to ``config_type``, with errors naming the key path and a suggestion; ``tables`` are
    the sub-tables the caller takes out first (``[generate.source]``...), suggested and listed with the keys."""
    if not isinstance(table, dict):
        raise BadInput(f"[{where}]: expected a table, got {type(table).__name__}")
    known = [f.name for f in msgspec.structs.fields(config_type)]
    for key in table:
        if key not in known:
            listed = [*known, *tables]
            hint = suggest(key, listed) or (f"; known keys: {', '.join(listed)}" if listed else "; it takes no keys")
            raise BadInput(f"[{where}] unknown key '{key}'{hint}")
    try:
        config = msgspec.convert(table, config_type)
    except msgspec.ValidationError as exc:
        raise BadInput(f"[{where}] {_located(exc, where)}") from None
    except (TypeError, ValueError) as exc:  # raised by a config's __post_init__
        raise BadInput(f"[{where}] {exc}") from None
    _check_paths(config, where)
    return config


def _located(exc: msgspec.ValidationError, where: str) -> str:
    text = str(exc)
    head, _, path = text.rpartition(" - at `$")
    if not head:
        return text
    key = path.rstrip("`").lstrip(".")
    return f"{where}.{key}: {head}" if key else head


def _check_paths(config: msgspec.Struct, where: str) -> None:
    hints = typing.get_type_hints(type(config), include_extras=True)
    for name, hint in hints.items():
        if typing.get_origin(hint) is typing.Annotated and any(isinstance(m, MustExist) for m in hint.__metadata__):
            value = getattr(config, name)
            if value is not None and not Path(value).exists():
                raise BadInput(f"[{where}] {where}.{name}: file not found: {value}")


def component(table: Any, role: str, where: str, plugins: Plugins) -> Component:
    """Resolve a ``{use = "name", ...config}`` table against the ``role`` registry."""
    if not isinstance(table, dict):
        raise BadInput(f"[{where}]: expected a table with a 'use' key, got {type(table).__name__}")
    if "use" not in table:
        raise BadInput(f"[{where}] missing key 'use' (the name of a registered {role})")
    name = table["use"]
    if not isinstance(name, str):
        raise BadInput(f"[{where}] {where}.use: expected a string, got {type(name).__name__}")
    registration = plugins.registry(role).get(name, where=f"[{where}] {where}.use")
    rest = {k: v for k, v in table.items() if k != "use"}
    return Component(where, registration, convert(rest, registration.config, where))


def parse(data: dict[str, Any], plugins: Plugins, path: Path) -> Recipe:
    """Validate a recipe's data against the registries, stage by stage (each parsed by its registered stage)."""
    order = plugins.stage_names()
    allowed = ["run", "variants", *order]  # the variants are read by the runner
    for key in data:
        if key not in allowed:
            raise BadInput(f"{path}: unknown section [{key}]{suggest(key, allowed)}; sections: {', '.join(allowed)}")
    run = convert(data.get("run", {}), RunSection, "run")
    assert isinstance(run, RunSection)
    if not run.stages:
        raise BadInput(f"[run] run.stages is empty: name at least one of {', '.join(order)}")
    for i, stage in enumerate(run.stages):
        if stage not in order:
            raise BadInput(f"[run] run.stages[{i}]: unknown stage '{stage}'{suggest(stage, list(order))}")
        if stage not in data:
            raise BadInput(f"[run] run.stages lists '{stage}' but the recipe has no [{stage}] section")
    recipe = Recipe(path=path, data=data, run=run, order=order)
    for stage in order:
        if stage in data:
            recipe.stages[stage] = plugins.stages[stage].stage.parse(data[stage], plugins)
    return recipe


def load(path: str | Path, plugins: Plugins, overrides: list[str] | None = None) -> Recipe:
    """Read, override and validate the recipe at ``path`` (a file, or the name of a built-in recipe)."""
    from afcot_core.catalog import expand, resolve

    path = resolve(path)
    data = expand(apply_overrides(load_toml(path), overrides or []))
    return parse(data, plugins, path)
