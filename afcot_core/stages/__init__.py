"""The stages a recipe can run, in order: generate → train → evaluate.

Each stage module has a ``Stage`` whose ``parse(table, plugins)`` returns a section object with
``components()`` (for preflight and the lock file) and ``run(ctx)``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


def _generate() -> Any:
    from afcot_core.stages.generate import GenerateStage

    return GenerateStage()


def _train() -> Any:
    from afcot_core.stages.train import TrainStage

    return TrainStage()


def _evaluate() -> Any:
    from afcot_core.stages.evaluate import EvaluateStage

    return EvaluateStage()


STAGE_MODULES: dict[str, Callable[[], Any]] = {"generate": _generate, "train": _train, "evaluate": _evaluate}
