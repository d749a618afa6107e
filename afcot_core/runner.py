"""Running a recipe: preflight, the run directory, ``recipe.lock.toml``, then the stages in order."""

from __future__ import annotations

import contextlib
import copy
import fcntl
import functools
import hashlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomli_w

import afcot_core
from afcot_core import catalog, weights
from afcot_core import log as logging
from afcot_core.digest import digest
from afcot_core.errors import BadInput
from afcot_core.plugins import Plugins
from afcot_core.progress import Bar
from afcot_core.recipe import Recipe, parse
from afcot_core.shards import atomic_write, check_fingerprint


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
        if stage not in recipe.order:
            raise BadInput(f"--stages: unknown stage '{stage}'; stages: {', '.join(recipe.order)}")
        if stage not in recipe.stages:
            raise BadInput(f"--stages: the recipe {recipe.path} has no [{stage}] section")
    return [s for s in recipe.order if s in stages]


def out_dir_of(recipe: Recipe, out: Path | None = None) -> Path:
    """The run folder: ``out``, else ``[run] out``, else ``runs/<name>``."""
    return Path(out or recipe.run.out or Path("runs") / recipe.run.name)


def preflight(recipe: Recipe, stages: list[str], out: Path | None = None) -> list[str]:
    """What is missing for ``stages``, including outputs of stages left out that ``out`` must already hold."""
    problems: list[str] = []
    with weights.planning(out_dir_of(recipe, out), stages, recipe.order):
        for stage in stages:
            for comp in recipe.stages[stage].components():
                problems += comp.preflight()
    return problems


def estimates(recipe: Recipe, stages: list[str], out: Path | None = None) -> list[dict[str, Any]]:
    """The components' estimates for ``stages`` (the train stage's memory per GPU), in stage order."""
    with weights.planning(out_dir_of(recipe, out), stages, recipe.order):
        return [e for stage in stages for comp in recipe.stages[stage].components() for e in comp.plan()]


def lock_document(recipe: Recipe, plugins: Plugins) -> dict[str, Any]:
    """The resolved recipe, the versions of the plugins it uses and its prompt hashes, with the fingerprint.

    The fingerprint covers only what decides the data: afcot's version, the run seed, each stage's
    components with their resolved configs (without run-only settings such as the cache switch or
    concurrency; paths into the built-in recipes' folder as ``{recipes}/...``), the versions of the
    plugins providing them and the hash of every prompt text. Installing an unrelated plugin, turning
    the replay cache off or installing afcot elsewhere leaves it unchanged.
    """
    resolved: dict[str, Any] = {"run": {"name": recipe.run.name, "seed": recipe.run.seed,
                                        "stages": recipe.run.stages}}
    identity: dict[str, Any] = {"seed": recipe.run.seed}
    prompts: dict[str, str] = {}
    used: set[str] = set()
    for stage, section in recipe.stages.items():
        resolved[stage] = section.to_table()
        identity[stage] = getattr(section, "identity_table", section.to_table)()
        for comp in section.components():
            used.add(comp.registration.plugin)
            for key, text in comp.registration.prompts.items():
                prompts[f"{comp.registration.name}/{key}"] = hashlib.sha256(text.encode()).hexdigest()
    doc = {
        "afcot": {"version": afcot_core.__version__, "hook_api": afcot_core.HOOK_API},
        "recipe": resolved,
        "plugins": {name: plugins.versions.get(name, "") for name in sorted(used)},
        "prompts": dict(sorted(prompts.items())),
    }
    fingerprint = digest({**doc, "recipe": catalog.portable(identity)})
    return {"fingerprint": fingerprint, **doc}


def rank_and_world() -> tuple[int, int]:
    """This process's RANK and WORLD_SIZE (0 of 1 when neither is set); :class:`BadInput` when they are wrong."""
    rank, world = os.environ.get("RANK"), os.environ.get("WORLD_SIZE")
    if rank is None and world is None:
        return 0, 1
    if rank is None or world is None:
        raise BadInput(f"RANK={rank} WORLD_SIZE={world}: set both (torchrun and accelerate do) or neither")
    try:
        r, w = int(rank), int(world)
    except ValueError:
        raise BadInput(f"RANK={rank!r} WORLD_SIZE={world!r}: expected integers") from None
    if w < 1 or not 0 <= r < w:
        raise BadInput(f"RANK={r} WORLD_SIZE={w}: expected WORLD_SIZE >= 1 and 0 <= RANK < WORLD_SIZE")
    return r, w


@contextlib.contextmanager
def exclusive(out_dir: Path, rank: int) -> Iterator[None]:
    """Hold ``<out>/.lock-rank<r>`` for the run: a second process with the same rank gets :class:`BadInput`."""
    path = out_dir / f".lock-rank{rank}"
    with path.open("a") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BadInput(f"{out_dir}: another afcot process with rank {rank} is running there ({path} is "
                           "locked); wait for it or use another --out") from None
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def plan_document(recipe: Recipe, stages: list[str] | None = None, out: Path | None = None) -> dict[str, Any]:
    """What ``run`` would do: the stages and their components, the estimates, and what is missing."""
    chosen = select_stages(recipe, stages)
    components = {stage: [{"where": c.where, "role": c.registration.role, "name": c.registration.name,
                           "plugin": c.registration.plugin, "description": c.registration.description}
                          for c in recipe.stages[stage].components()] for stage in chosen}
    doc = {"recipe": str(recipe.path), "run": recipe.run.name, "seed": recipe.run.seed, "stages": components,
           "estimates": estimates(recipe, chosen, out), "missing": preflight(recipe, chosen, out)}
    if "variants" in recipe.data:
        from afcot_core.plugins import default

        found = variants(recipe, default(), out, stages)
        doc["variants"] = [{"name": n, "out": str(f), "overrides": recipe.data["variants"][n], "stages": c,
                            "items_of": shared} for n, (_, f, shared, c) in found.items()]
        doc["missing"] = [f"[variants.{n}] {p}" for n, (v, f, _, c) in found.items() for p in preflight(v, c, f)]
    return doc


def plan(doc: dict[str, Any]) -> str:
    """A readable account of what ``run`` would do (``doc``: its :func:`plan_document`)."""
    lines = [f"recipe {doc['recipe']} (run '{doc['run']}', seed {doc['seed']})"]
    for stage, components in doc["stages"].items():
        lines.append(f"stage {stage}:")
        for c in components:
            lines.append(f"  [{c['where']}] {c['role']} '{c['name']}' ({c['plugin']}): {c['description']}")
            for e in doc["estimates"]:
                if e["where"] == c["where"]:
                    lines += [f"    {e['text']}", *([f"    {e['detail'].strip()}"] if e.get("detail") else [])]
    for v in doc.get("variants", []):
        told = ", ".join(f"{k} = {val!r}" for k, val in v["overrides"].items()) or "the recipe as it is"
        shared = f"; trains on the items of '{v['items_of']}'" if v["items_of"] else ""
        lines.append(f"variant {v['name']} -> {v['out']} ({', '.join(v['stages'])}): {told}{shared}")
    lines += [f"missing: {p}" for p in doc["missing"]] or ["all inputs present"]
    return "\n".join(lines)


def run(recipe: Recipe, plugins: Plugins, out: Path | None = None, stages: list[str] | None = None,
        show_progress: bool = True) -> dict[str, Any]:
    """Run ``stages`` of ``recipe`` into ``out``; nothing is created unless every check passes. A recipe with
    ``[variants]`` runs each variant as its own run in ``out/<name>``, then the ``variants_finished`` hook."""
    if "variants" in recipe.data:
        found = variants(recipe, plugins, out, stages)
        for name, (v, folder, _, chosen) in found.items():  # every variant's inputs, before any of them runs
            if problems := preflight(v, chosen, folder):
                raise BadInput(f"[variants.{name}] cannot start, inputs are missing:\n  " + "\n  ".join(problems))
        results = {n: run(v, plugins, f, c, show_progress) for n, (v, f, _, c) in found.items() if c}
        plugins.manager.hook.variants_finished(out_dir=out_dir_of(recipe, out), variants=list(found), log=logging.get())
        return {"out": str(out_dir_of(recipe, out)), "variants": results}
    chosen = select_stages(recipe, stages)
    if show_progress:  # the checks may take seconds (the train stage's memory plan builds the model on no device)
        logging.console().print(f"{recipe.run.name}: checking the inputs and plan of {', '.join(chosen)}", markup=False)
    problems = preflight(recipe, chosen, out)
    if problems:
        raise BadInput("cannot start, inputs are missing:\n  " + "\n  ".join(problems))
    planned = estimates(recipe, chosen, out)
    refused = [f"[{e['where']}] {e['text']}" for e in planned if not e.get("ok", True)]
    if refused:
        raise BadInput("cannot start:\n  " + "\n  ".join(refused))
    out_dir = out_dir_of(recipe, out)
    rank, world = rank_and_world()
    lock = lock_document(recipe, plugins)
    check_fingerprint(out_dir / "generate", lock["fingerprint"])
    out_dir.mkdir(parents=True, exist_ok=True)
    with exclusive(out_dir, rank):
        check_fingerprint(out_dir / "generate", lock["fingerprint"])  # again, now that no one else writes
        atomic_write(out_dir / "recipe.lock.toml",
                     lambda tmp: tmp.write_text(tomli_w.dumps(_toml_safe(lock)), encoding="utf-8"),
                     tmp_suffix=f".rank{rank}.tmp")
        return _run_stages(recipe, plugins, out_dir, chosen, lock["fingerprint"], rank, world, show_progress,
                           planned)


def variants(recipe: Recipe, plugins: Plugins, out: Path | None = None,
             stages: list[str] | None = None) -> dict[str, tuple[Recipe, Path, str | None, list[str]]]:
    """Each ``[variants.NAME]`` of ``recipe`` (dotted keys set as ``--set`` does, a table merged into a table), in
    order: its recipe, folder ``out/NAME``, the earlier variant with the same seed and ``[generate]`` whose items it
    trains on (its train stage reading that one's ``generate/``, its own generate left out), and its stages."""
    table = recipe.data["variants"]
    if not isinstance(table, dict) or not all(isinstance(t, dict) for t in table.values()):
        raise BadInput(f'{recipe.path}: [variants] holds [variants.NAME] tables of "dotted.key" = value lines')
    found: dict[str, tuple[Recipe, Path, str | None, list[str]]] = {}
    for name, overrides in table.items():
        if not name.replace("-", "").replace("_", "").replace(".", "").isalnum() or name.startswith("."):
            raise BadInput(f"[variants.{name}]: a variant's name is its folder: letters, digits, '-', '_', '.'")
        data = copy.deepcopy({k: v for k, v in recipe.data.items() if k != "variants"})
        try:
            for key, value in overrides.items():
                _merge(data, key, value)
            items = (data.setdefault("run", {}).get("seed"), data.get("generate"))
            shared = next((n for n, (v, _, s, _) in found.items()
                           if not s and items == (v.data["run"].get("seed"), v.data.get("generate"))), None)
            if shared and isinstance(data.get("train"), dict):
                del data["generate"]
                data["run"]["stages"] = [s for s in data["run"].get("stages", []) if s != "generate"] or ["train"]
                data["train"] = catalog.strings({"data": "{run}/generate", **data["train"]}, functools.partial(
                    _moved, f"{{run}}/../{shared}/generate"))
            variant = parse(catalog.expand(data), plugins, recipe.path)
            shared = None if "generate" in data else shared
            chosen = select_stages(variant, [s for s in stages if not (shared and s == "generate")] if stages else None)
        except BadInput as exc:
            raise BadInput(f"[variants.{name}] {exc}") from None
        found[name] = (variant, out_dir_of(recipe, out) / name, shared, chosen)
    return found


def _moved(there: str, path: str) -> str:  # ``path`` with the ``{run}/generate`` it starts with made ``there``
    return there + path[14:] if path == "{run}/generate" or path.startswith("{run}/generate/") else path


def _merge(node: dict[str, Any], key: str, value: Any) -> None:
    """Set ``value`` at the dotted ``key`` in ``node`` (tables made on the way); a table is merged into a table."""
    *tables, last = key.split(".")
    for part in tables:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise BadInput(f"'{key}': '{part}' is not a table")
    if isinstance(value, dict) and isinstance(node.get(last), dict):
        for inner, v in value.items():
            _merge(node[last], inner, v)
    else:
        node[last] = copy.deepcopy(value)


def _run_stages(recipe: Recipe, plugins: Plugins, out_dir: Path, chosen: list[str], fingerprint: str, rank: int,
                world: int, show_progress: bool, planned: list[dict[str, Any]]) -> dict[str, Any]:
    log = logging.get(run=recipe.run.name, **({"rank": rank} if world > 1 else {}))  # bound when it logs
    ctx = RunContext(out_dir, recipe, plugins, fingerprint, log, show_progress, rank, world)
    results: dict[str, Any] = {}
    with logging.run_log(out_dir / "logs" / "run.jsonl", quiet=not show_progress), weights.run_dir(out_dir):
        for e in planned:  # e.g. the train stage's memory per GPU, before any stage starts
            log.info("plan", where=e["where"], estimate=e["text"], **e.get("figures", {}))
        for stage in chosen:
            started = time.perf_counter()
            log.info("stage started", stage=stage, out=str(out_dir))
            results[stage] = recipe.stages[stage].run(ctx)
            plugins.manager.hook.stage_finished(stage=stage, out_dir=out_dir, log=log)
            log.info("stage finished", stage=stage, seconds=round(time.perf_counter() - started, 2))
    return {"out": str(out_dir), "fingerprint": fingerprint, **results}


def _toml_safe(value: Any) -> Any:
    """TOML has no null: drop None values."""
    if isinstance(value, dict):
        return {k: _toml_safe(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_toml_safe(v) for v in value if v is not None]
    return value
