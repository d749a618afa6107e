"""The core's own stage, registered through the ``register_stages`` hook like a plugin's: generate (train and
evaluate are the plugins' stages: afcot_flamingo's, beside its trainers, and afcot_benchmarks').

Each stage's ``parse(table, plugins)`` returns a section object with ``components()`` (for preflight and the lock
file), ``to_table()`` and ``run(ctx)``. The recipe module never imports a stage; it asks the loaded plugins.
"""

from __future__ import annotations

from typing import Any

from afcot_core.hookspecs import hookimpl


class _Lazy:
    """A stage whose module is imported when a recipe first names it."""

    def __init__(self, module: str, cls: str) -> None:
        self.module, self.cls = module, cls

    def _stage(self) -> Any:
        import importlib

        return getattr(importlib.import_module(self.module), self.cls)()

    @property
    def settings(self) -> Any:
        return getattr(self._stage(), "settings", None)

    def parse(self, table: Any, plugins: Any) -> Any:
        return self._stage().parse(table, plugins)


@hookimpl
def register_stages(register: Any) -> None:
    register("generate", _Lazy("afcot_core.stages.generate", "GenerateStage"), 10)
