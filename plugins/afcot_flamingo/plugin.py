"""Registers the Audio Flamingo trainers."""

from __future__ import annotations

from afcot_core.hookspecs import hookimpl


def _af3(config):
    from afcot_flamingo.af3 import Af3Trainer

    return Af3Trainer(config)


def _af2(config):
    from afcot_core.errors import AfcotError

    raise AfcotError("trainer 'af2' is not available in this release; use 'af3'")


def _student(config):
    from afcot_flamingo.student import Af3Student

    return Af3Student(config)


@hookimpl
def register_teacher_alms(register):
    from afcot_flamingo.student import Af3StudentConfig, preflight

    register("af3", _student, Af3StudentConfig, "an Audio Flamingo 3 checkpoint answering prompts (for evaluation)",
             preflight=preflight)


@hookimpl
def register_trainers(register):
    from afcot_flamingo.config import Af2TrainConfig, Af3TrainConfig, af2_preflight, af3_preflight

    register("af3", _af3, Af3TrainConfig, "finetune Audio Flamingo 3 (transformers) on CoT shards",
             preflight=af3_preflight)
    register("af2", _af2, Af2TrainConfig, "Audio Flamingo 2 (paper's released config; architecture not included)",
             preflight=af2_preflight)
