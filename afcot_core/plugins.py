"""Loading plugins safely and collecting their registrations.

Every installed ``afcot`` entry point is loaded in its own guard: a plugin that fails to import (any
exception, ``SystemExit`` included), implements an unknown hook or raises while registering is reported and
skipped; the rest load. The built-in plugins (those of the ``afcot`` distribution) register first, and a name
registered twice in one role is refused with a warning naming both plugins: the first registration stays.
``AFCOT_PLUGINS`` (comma-separated entry-point names) is an allow-list; ``AFCOT_DISABLE_PLUGINS``
removes names from whatever would load; a name in either that matches no installed plugin is warned about.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata as md
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import msgspec
import pluggy

from afcot_core import hookspecs
from afcot_core.registry import ROLES, NoConfig, Registration, Registry, suggest

GROUP = "afcot"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
BUILTIN_DIST = "afcot"
#: the registration hook of each role
HOOK_OF_ROLE = {
    "teacher_alm": "register_teacher_alms",
    "teacher_llm": "register_teacher_llms",
    "strategy": "register_strategies",
    "negative_sampler": "register_negative_samplers",
    "validator": "register_validators",
    "trainer": "register_trainers",
    "benchmark": "register_benchmarks",
    "source": "register_sources",
    "sink": "register_sinks",
}


@dataclass(frozen=True)
class Command:
    """A CLI sub-command contributed by a plugin."""

    name: str
    help: str
    configure: Callable[[Any], None]
    run: Callable[[Any], int]
    plugin: str


@dataclass(frozen=True)
class Stage:
    """A recipe stage contributed by a plugin: ``stage.parse(table, plugins)`` gives its section."""

    name: str
    stage: Any
    order: int
    plugin: str


#: the module registering the core's own stages (generate, train); loaded before every plugin
CORE_STAGES = "afcot_core.stages"


@dataclass
class Plugins:
    """The loaded plugins: their registries, their commands, and what failed to load."""

    manager: pluggy.PluginManager
    registries: dict[str, Registry]
    commands: dict[str, Command] = field(default_factory=dict)
    stages: dict[str, Stage] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    notices: list[str] = field(default_factory=list)

    def registry(self, role: str) -> Registry:
        return self.registries[role]

    def stage_names(self) -> tuple[str, ...]:
        """The registered stages, in the order a run goes through them."""
        return tuple(s.name for s in sorted(self.stages.values(), key=lambda s: (s.order, s.name)))

    def warnings(self) -> list[str]:
        """One line per problem met while loading: skipped plugins, refused registrations, unmatched names."""
        return [*self.notices, *(f"plugin '{name}': {error}" for name, error in sorted(self.failures.items()))]

    def problem(self, plugin: str, message: str) -> None:
        """Record a problem of ``plugin`` (several are joined)."""
        previous = self.failures.get(plugin)
        self.failures[plugin] = f"{previous}; {message}" if previous else message


def _env_names(var: str) -> set[str] | None:
    raw = os.environ.get(var)
    if raw is None:
        return None
    return {n.strip() for n in raw.split(",") if n.strip()}


def _selected(eps: Iterable[md.EntryPoint], notices: list[str]) -> list[md.EntryPoint]:
    """The entry points to load, built-in ones first; a note in ``notices`` for each unmatched env name."""
    eps = list(eps)
    allow = _env_names("AFCOT_PLUGINS")
    deny = _env_names("AFCOT_DISABLE_PLUGINS") or set()
    installed = sorted({ep.name for ep in eps})
    if allow == set():
        notices.append("AFCOT_PLUGINS is set but names no plugin: none is loaded")
    for var, names in (("AFCOT_PLUGINS", allow or set()), ("AFCOT_DISABLE_PLUGINS", deny)):
        for name in sorted(names - set(installed)):
            notices.append(f"{var}: '{name}' matches no installed plugin{suggest(name, installed)}; "
                           f"installed: {', '.join(installed) or 'none'}")
    chosen = [ep for ep in eps if (allow is None or ep.name in allow) and ep.name not in deny]
    return sorted(chosen, key=lambda ep: not is_builtin(ep))


def is_builtin(ep: md.EntryPoint) -> bool:
    """Whether ``ep`` is shipped in the afcot distribution itself."""
    return ep.dist is not None and ep.dist.name == BUILTIN_DIST


def load(extra: dict[str, ModuleType | object] | None = None) -> Plugins:
    """Load the installed plugins (plus ``extra`` plugin objects by name, used by tests)."""
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    plugins = Plugins(manager=pm, registries={r: Registry(r) for r in ROLES})
    candidates: list[tuple[str, Callable[[], object], str]] = [
        ("core", functools.partial(importlib.import_module, CORE_STAGES), _own_version())]
    for ep in _selected(md.entry_points(group=GROUP), plugins.notices):
        version = ep.dist.version if ep.dist is not None else "?"
        candidates.append((ep.name, ep.load, version))
    for name, obj in (extra or {}).items():
        candidates.append((name, functools.partial(lambda o: o, obj), "local"))
    for name, loader, version in candidates:
        try:
            module = loader()
            pm.register(module, name=name)
            _check_pending_of(pm, name)
        except BaseException as exc:  # a broken plugin must never take the CLI down, not even by sys.exit()
            if isinstance(exc, KeyboardInterrupt):
                raise
            if pm.has_plugin(name):
                pm.unregister(name=name)
            plugins.problem(name, f"skipped: {type(exc).__name__}: {exc}")
            continue
        plugins.versions[name] = version
    _collect(plugins, [name for name, _, _ in candidates])
    return plugins


def _own_version() -> str:
    from afcot_core import __version__

    return __version__


def _check_pending_of(pm: pluggy.PluginManager, name: str) -> None:
    """Raise if plugin ``name`` implements a hook that no spec declares (a misspelled hook)."""
    plugin = pm.get_plugin(name)
    for hook in pm.get_hookcallers(plugin) or []:
        if hook.spec is None:
            raise pluggy.PluginValidationError(plugin, f"unknown hook '{hook.name}' (misspelled?)")


def _collect(plugins: Plugins, order: list[str]) -> None:
    """Call every registration hook, plugin by plugin in load order (built-ins first, whatever ``tryfirst``)."""
    pm = plugins.manager
    rank = {name: i for i, name in enumerate(order)}

    def impls(hook: Any) -> list[Any]:
        return sorted(hook.get_hookimpls(), key=lambda impl: rank.get(impl.plugin_name, len(rank)))

    for role, hook_name in HOOK_OF_ROLE.items():
        registry = plugins.registries[role]
        for impl in impls(getattr(pm.hook, hook_name)):
            register = _registrar(plugins, registry, role, impl.plugin_name)
            _guarded(plugins, impl.plugin_name, functools.partial(impl.function, register))
    for impl in impls(pm.hook.register_stages):

        def stage(name: str, parser: Any, order: int = 100, _plugin: str = impl.plugin_name) -> None:
            if name in plugins.stages or name == "run":
                other = plugins.stages[name].plugin if name in plugins.stages else "core"
                plugins.problem(_plugin, f"stage '{name}' refused: plugin '{other}' registered it first")
                return
            plugins.stages[name] = Stage(name, parser, order, _plugin)

        _guarded(plugins, impl.plugin_name, functools.partial(impl.function, stage))
    for impl in impls(pm.hook.register_commands):

        def add(name: str, help: str, configure: Callable, run: Callable, _plugin: str = impl.plugin_name) -> None:
            if name in plugins.commands:
                other = plugins.commands[name].plugin
                plugins.problem(_plugin, f"command '{name}' refused: plugin '{other}' registered it first")
                return
            plugins.commands[name] = Command(name, help, configure, run, _plugin)

        _guarded(plugins, impl.plugin_name, functools.partial(impl.function, add))


def _guarded(plugins: Plugins, plugin: str, call: Callable[[], object]) -> None:
    try:
        call()
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        plugins.problem(plugin, f"{type(exc).__name__} while registering: {exc}")


def _registrar(plugins: Plugins, registry: Registry, role: str, plugin: str) -> Callable[..., None]:
    def register(
        name: str,
        factory: Callable[[Any], Any],
        config: type[msgspec.Struct] = NoConfig,
        description: str = "",
        preflight: Callable[[Any], list[str]] | None = None,
        prompts: dict[str, str] | None = None,
        plan: Callable[[Any], list[dict[str, Any]]] | None = None,
    ) -> None:
        if name in registry.entries:
            other = registry.entries[name].plugin
            plugins.problem(plugin, f"{role} '{name}' registered twice: refused, the one of plugin '{other}' stays")
            return
        why = _invalid(name, factory, config)
        if why:
            plugins.problem(plugin, f"{role} {name!r} refused: {why}")
            return
        registry.add(Registration(role, name, factory, config, description, plugin, preflight, prompts or {}, plan))

    return register


def _invalid(name: object, factory: object, config: object) -> str | None:
    """Why a registration cannot be used, or None."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        return "a name is letters, digits and . _ - (starting with a letter or digit)"
    if not callable(factory):
        return "its factory is not callable"
    if not (isinstance(config, type) and issubclass(config, msgspec.Struct)):
        return "its config is not a msgspec.Struct type"
    return None


@functools.cache
def default() -> Plugins:
    """The plugins of this process, loaded once."""
    return load()
