"""Registries of named components, one per role, with "did you mean" on unknown names."""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import msgspec

from afcot_core.errors import BadInput

ROLES = (
    "teacher_alm",
    "teacher_llm",
    "strategy",
    "negative_sampler",
    "validator",
    "trainer",
    "benchmark",
    "source",
    "sink",
)


class NoConfig(msgspec.Struct, forbid_unknown_fields=True):
    """The config of a component that takes no options."""


@dataclass(frozen=True)
class Registration:
    """A component as a plugin registered it."""

    role: str
    name: str
    factory: Callable[[Any], Any]
    config: type[msgspec.Struct]
    description: str
    plugin: str
    preflight: Callable[[Any], list[str]] | None = None
    prompts: dict[str, str] = field(default_factory=dict)
    #: ``plan(config)``: estimates shown by ``recipe plan`` (``{"text", "ok", "detail", "figures"}``); a run whose
    #: estimate is not ``ok`` is refused before it starts
    plan: Callable[[Any], list[dict[str, Any]]] | None = None

    def build(self, config: msgspec.Struct) -> Any:
        return self.factory(config)


def suggest(name: str, options: list[str]) -> str:
    """A " (did you mean 'x'?)" hint, or an empty string."""
    close = difflib.get_close_matches(name, options, n=1, cutoff=0.5)
    return f" (did you mean '{close[0]}'?)" if close else ""


@dataclass
class Registry:
    """The components of one role, by name."""

    role: str
    entries: dict[str, Registration] = field(default_factory=dict)

    def add(self, registration: Registration) -> None:
        if registration.name in self.entries:
            other = self.entries[registration.name].plugin
            raise ValueError(
                f"{self.role} '{registration.name}' registered twice (plugins '{other}' and '{registration.plugin}')"
            )
        self.entries[registration.name] = registration

    def get(self, name: str, where: str = "") -> Registration:
        """The registration called ``name``; a :class:`BadInput` with a suggestion otherwise."""
        try:
            return self.entries[name]
        except KeyError:
            at = f"{where}: " if where else ""
            known = ", ".join(sorted(self.entries)) or "none"
            raise BadInput(
                f"{at}unknown {self.role} '{name}'{suggest(name, list(self.entries))}; registered: {known}"
            ) from None

    def names(self) -> list[str]:
        return sorted(self.entries)
