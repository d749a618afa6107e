"""Running a recipe: preflight, the run directory, ``recipe.lock.toml``, then the stages in order."""

from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

import afcot_core
from afcot_core import log as logging
from afcot_core import weights
from afcot_core.digest import digest
from afcot_core.errors import BadInput
from afcot_core.plugins import Plugins
from afcot_core.progress import Bar
from afcot_core.recipe import STAGES, Recipe


@dataclass
class RunContext:
    """What a stage sees of its run."""

    out_dir: Path
    recipe: Recipe
    plugins: Plugins
    fingerprint: str
    log: Any
    show_progress: bool = True
    #: this process's place in a torchrun / accelerate job (RANK, WORLD_SIZE); 0 of 1 otherwise
    rank: int = 0
    world: int = 1

    @property
    def seed(self) -> int:
        """The run seed (``[run] seed``); every sampled teacher request derives its own seed from it."""
        return self.recipe.run.seed

    def progress(self, name: str, total: int | None) -> Bar:
        return Bar(name, total, self.show_progress)


def select_stages(recipe: Recipe, stages: list[str] | None) -> list[str]:
    """The stages to run: ``stages`` when given (each must be configured), else the recipe's own list."""
    if stages is None:
        return list(recipe.run.stages)
    for stage in stages:
        if stage not in STAGES:
            raise BadInput(f"--stages: unknown stage '{stage}'; stages: {', '.join(STAGES)}")
        if stage not in recipe.stages:
            raise BadInput(f"--stages: the recipe {recipe.path} has no [{stage}] section")
    return [s for s in STAGES if s in stages]


def preflight(recipe: Recipe, stages: list[str]) -> list[str]:
    problems: list[str] = []
    for stage in stages:
        for comp in recipe.stages[stage].components():
            problems += comp.preflight()
    return problems


def lock_document(recipe: Recipe, plugins: Plugins) -> dict[str, Any]:
    """The resolved recipe, plugin versions and prompt hashes; its hash is the run's fingerprint."""
    resolved: dict[str, Any] = {"run": {"name": recipe.run.name, "seed": recipe.run.seed,
                                        "stages": recipe.run.stages}}
    prompts: dict[str, str] = {}
    for stage, section in recipe.stages.items():
        resolved[stage] = section.to_table()
        for comp in section.components():
            for key, text in comp.registration.prompts.items():
                prompts[f"{comp.registration.name}/{key}"] = hashlib.sha256(text.encode()).hexdigest()
    doc = {
        "afcot": {"version": afcot_core.__version__, "hook_api": afcot_core.HOOK_API},
        "recipe": resolved,
        "plugins": dict(sorted(plugins.versions.items())),
        "prompts": dict(sorted(prompts.items())),
    }
    return {"fingerprint": digest(doc), **doc}


def plan(recipe: Recipe, stages: list[str] | None = None) -> str:
    """A readable account of what ``run`` would do."""
    lines = [f"recipe {recipe.path} (run '{recipe.run.name}', seed {recipe.run.seed})"]
    for stage in select_stages(recipe, stages):
        lines.append(f"stage {stage}:")
        for comp in recipe.stages[stage].components():
            reg = comp.registration
            lines.append(f"  [{comp.where}] {reg.role} '{reg.name}' ({reg.plugin}): {reg.description}")
    problems = preflight(recipe, select_stages(recipe, stages))
    lines += [f"missing: {p}" for p in problems] or ["all inputs present"]
    return "\n".join(lines)


def run(recipe: Recipe, plugins: Plugins, out: Path | None = None, stages: list[str] | None = None,
        show_progress: bool = True) -> dict[str, Any]:
    """Run ``stages`` of ``recipe`` into ``out``; nothing is created unless every check passes."""
    chosen = select_stages(recipe, stages)
    problems = preflight(recipe, chosen)
    if problems:
        raise BadInput("cannot start, inputs are missing:\n  " + "\n  ".join(problems))
    out_dir = Path(out or recipe.run.out or Path("runs") / recipe.run.name)
    lock = lock_document(recipe, plugins)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "recipe.lock.toml").write_text(tomli_w.dumps(_toml_safe(lock)), encoding="utf-8")
    logging.configure(out_dir / "logs" / "run.jsonl", quiet=not show_progress)
    rank, world = int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    log = logging.get().bind(run=recipe.run.name, **({"rank": rank} if world > 1 else {}))
    ctx = RunContext(out_dir, recipe, plugins, lock["fingerprint"], log, show_progress, rank, world)
    os.environ[weights.RUN_DIR_ENV] = str(out_dir.resolve())
    results: dict[str, Any] = {}
    for stage in chosen:
        started = time.perf_counter()
        log.info("stage started", stage=stage, out=str(out_dir))
        results[stage] = recipe.stages[stage].run(ctx)
        log.info("stage finished", stage=stage, seconds=round(time.perf_counter() - started, 2))
    return {"out": str(out_dir), "fingerprint": lock["fingerprint"], **results}


def _toml_safe(value: Any) -> Any:
    """TOML has no null: drop None values."""
    if isinstance(value, dict):
        return {k: _toml_safe(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_toml_safe(v) for v in value if v is not None]
    return value
