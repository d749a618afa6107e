"""Loading plugins safely and collecting their registrations.

Every installed ``afcot`` entry point is loaded in its own guard: a plugin that fails to import,
implements an unknown hook or raises while registering is reported and skipped; the rest load.
``AFCOT_PLUGINS`` (comma-separated entry-point names) is an allow-list; ``AFCOT_DISABLE_PLUGINS``
removes names from whatever would load.
"""

from __future__ import annotations

import functools
import importlib.metadata as md
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import msgspec
import pluggy

from afcot_core import hookspecs
from afcot_core.registry import ROLES, NoConfig, Registration, Registry

GROUP = "afcot"
_HOOK_OF_ROLE = {
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


@dataclass
class Plugins:
    """The loaded plugins: their registries, their commands, and what failed to load."""

    manager: pluggy.PluginManager
    registries: dict[str, Registry]
    commands: dict[str, Command] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)

    def registry(self, role: str) -> Registry:
        return self.registries[role]


def _env_names(var: str) -> set[str] | None:
    raw = os.environ.get(var)
    if raw is None:
        return None
    return {n.strip() for n in raw.split(",") if n.strip()}


def _selected(eps: Iterable[md.EntryPoint]) -> list[md.EntryPoint]:
    allow = _env_names("AFCOT_PLUGINS")
    deny = _env_names("AFCOT_DISABLE_PLUGINS") or set()
    return [ep for ep in eps if (allow is None or ep.name in allow) and ep.name not in deny]


def load(extra: dict[str, ModuleType | object] | None = None) -> Plugins:
    """Load the installed plugins (plus ``extra`` plugin objects by name, used by tests)."""
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    plugins = Plugins(manager=pm, registries={r: Registry(r) for r in ROLES})
    candidates: list[tuple[str, Callable[[], object], str]] = []
    for ep in _selected(md.entry_points(group=GROUP)):
        version = ep.dist.version if ep.dist is not None else "?"
        candidates.append((ep.name, ep.load, version))
    for name, obj in (extra or {}).items():
        candidates.append((name, functools.partial(lambda o: o, obj), "local"))
    for name, loader, version in candidates:
        try:
            module = loader()
            pm.register(module, name=name)
            _check_pending_of(pm, name)
        except Exception as exc:  # a broken plugin must never take the CLI down
            if pm.has_plugin(name):
                pm.unregister(name=name)
            plugins.failures[name] = f"{type(exc).__name__}: {exc}"
            continue
        plugins.versions[name] = version
    _collect(plugins)
    return plugins


def _check_pending_of(pm: pluggy.PluginManager, name: str) -> None:
    """Raise if plugin ``name`` implements a hook that no spec declares (a misspelled hook)."""
    plugin = pm.get_plugin(name)
    for hook in pm.get_hookcallers(plugin) or []:
        if hook.spec is None:
            raise pluggy.PluginValidationError(plugin, f"unknown hook '{hook.name}' (misspelled?)")


def _collect(plugins: Plugins) -> None:
    pm = plugins.manager
    for role, hook_name in _HOOK_OF_ROLE.items():
        registry = plugins.registries[role]
        for impl in getattr(pm.hook, hook_name).get_hookimpls():
            register = _registrar(registry, role, impl.plugin_name)
            _guarded(plugins, impl.plugin_name, functools.partial(impl.function, register))
    for impl in pm.hook.register_commands.get_hookimpls():

        def add(name: str, help: str, configure: Callable, run: Callable, _plugin: str = impl.plugin_name) -> None:
            if name in plugins.commands:
                raise ValueError(f"command '{name}' registered twice")
            plugins.commands[name] = Command(name, help, configure, run, _plugin)

        _guarded(plugins, impl.plugin_name, functools.partial(impl.function, add))


def _guarded(plugins: Plugins, plugin: str, call: Callable[[], object]) -> None:
    try:
        call()
    except Exception as exc:
        plugins.failures[plugin] = f"{type(exc).__name__} while registering: {exc}"


def _registrar(registry: Registry, role: str, plugin: str) -> Callable[..., None]:
    def register(
        name: str,
        factory: Callable[[Any], Any],
        config: type[msgspec.Struct] = NoConfig,
        description: str = "",
        preflight: Callable[[Any], list[str]] | None = None,
        prompts: dict[str, str] | None = None,
    ) -> None:
        registry.add(Registration(role, name, factory, config, description, plugin, preflight, prompts or {}))

    return register


@functools.cache
def default() -> Plugins:
    """The plugins of this process, loaded once."""
    return load()
