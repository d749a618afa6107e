"""The hook specifications: one hook per role, each receiving a ``register`` callable.

A plugin module implements any of these with ``@afcot_core.hookimpl`` and is listed under the
``afcot`` entry-point group. Every component is registered as::

    register(name, factory, config=ConfigStruct, description="one line", preflight=None, prompts=None, plan=None)

``factory(config)`` builds the component from its msgspec ``config``; ``preflight(config)`` returns
a list of human-readable problems (missing weights, missing files) checked before any work starts;
``prompts`` maps prompt names to their text, hashed into the run's lock file; ``plan(config)`` returns
estimates (``{"text": ..., "ok": ...}``) that ``recipe plan`` prints and that refuse a run when not ``ok``
(e.g. the train stage's memory per GPU).
Factories import heavy libraries lazily so that loading plugins stays cheap.
"""

from __future__ import annotations

from typing import Any

import pluggy

hookspec = pluggy.HookspecMarker("afcot")
hookimpl = pluggy.HookimplMarker("afcot")

Register = Any  # the callable described in the module docstring


@hookspec
def register_teacher_alms(register: Register) -> None:
    """Register audio language model teachers: ``factory(config)`` returns an ``AlmTeacher``."""


@hookspec
def register_teacher_llms(register: Register) -> None:
    """Register text LLM teachers: ``factory(config)`` returns an ``LlmTeacher``."""


@hookspec
def register_strategies(register: Register) -> None:
    """Register CoT generation algorithms: ``factory(config)`` returns a ``Strategy``."""


@hookspec
def register_negative_samplers(register: Register) -> None:
    """Register samplers of wrong options for multiple-choice items."""


@hookspec
def register_validators(register: Register) -> None:
    """Register validators that accept or reject a draft CoT: ``factory(config)`` returns a ``Validator``."""


@hookspec
def register_trainers(register: Register) -> None:
    """Register trainers that finetune a student model on CoT shards."""


@hookspec
def register_benchmarks(register: Register) -> None:
    """Register benchmarks, each owning its loader, prompt, answer extraction and scorer."""


@hookspec
def register_sources(register: Register) -> None:
    """Register item sources: ``factory(config)`` returns a ``Source`` of ``Item`` partitions."""


@hookspec
def register_sinks(register: Register) -> None:
    """Register record sinks: ``factory(config)`` returns a ``Sink`` that writes one shard per partition."""


@hookspec
def register_stages(register: Register) -> None:
    """Register recipe stages: ``register(name, stage, order)``.

    ``stage.parse(table, plugins)`` turns the recipe's ``[name]`` table into a section with ``components()``,
    ``to_table()`` and ``run(ctx)``; ``stage.settings`` (a msgspec Struct type, optional) documents the table's
    own keys. Stages run in ascending ``order`` (generate 10, train 20, evaluate 30).
    """


@hookspec
def stage_finished(stage: str, out_dir: Any, log: Any) -> None:
    """Called after a stage of a run has finished into ``out_dir`` (the run folder), e.g. to write a summary."""


@hookspec
def variants_finished(out_dir: Any, variants: list[str], log: Any) -> None:
    """Called after every variant of a recipe has run, each into ``out_dir/<name>``, e.g. to compare them."""


@hookspec
def register_commands(register: Register) -> None:
    """Register CLI sub-commands: ``register(name, help, configure, run)``.

    ``configure(parser)`` adds arguments to an ``argparse`` parser; ``run(args)`` returns the exit code. A name
    of two words (``"recipe list"``) adds the command to that group of afcot's own commands.
    """
