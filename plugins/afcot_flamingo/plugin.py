"""Registers the Audio Flamingo trainers and the ``train`` stage that runs them, the models that answer prompts, and
``afcot af2-convert``."""

from __future__ import annotations

from afcot_core.api import hookimpl


def _af3(config):
    from afcot_flamingo.af3 import Af3Trainer

    return Af3Trainer(config)


def _af2(config):
    from afcot_flamingo.af2.trainer import Af2Trainer

    return Af2Trainer(config)


def _af2_answerer(config):
    from afcot_flamingo.af2.answer import Af2Answerer

    return Af2Answerer(config)


def _student(config):
    from afcot_flamingo.student import Af3Student

    return Af3Student(config)


@hookimpl
def register_teacher_alms(register):
    from afcot_flamingo.student import Af3StudentConfig, preflight

    register("af3", _student, Af3StudentConfig, "an Audio Flamingo 3 checkpoint answering prompts (for evaluation)",
             preflight=preflight)
    from afcot_flamingo.af2.answer import Af2AnswerConfig
    from afcot_flamingo.af2.answer import preflight as af2_preflight

    register("af2", _af2_answerer, Af2AnswerConfig,
             "an Audio Flamingo 2 model answering prompts (released CoT inference: sampled, lowercased, repaired)",
             preflight=af2_preflight)


@hookimpl
def register_trainers(register):
    from afcot_flamingo.af2.trainer import Af2TrainConfig
    from afcot_flamingo.af2.trainer import plan as af2_plan
    from afcot_flamingo.af2.trainer import preflight as af2_preflight
    from afcot_flamingo.config import Af3TrainConfig, af3_plan, af3_preflight

    register("af3", _af3, Af3TrainConfig, "finetune Audio Flamingo 3 (transformers) on CoT shards",
             preflight=af3_preflight, plan=af3_plan)
    register("af2", _af2, Af2TrainConfig, "finetune Audio Flamingo 2 (our implementation, released checkpoints) on "
             "CoT shards", preflight=af2_preflight, plan=af2_plan)


class _Train:
    """The ``[train]`` stage, imported when a recipe names it."""

    def parse(self, table, plugins):
        from afcot_flamingo.stage import TrainStage

        return TrainStage().parse(table, plugins)


@hookimpl
def register_stages(register):
    register("train", _Train(), 20)


def _convert_args(parser):
    parser.add_argument("checkpoint", help="the release: a folder with safe_ckpt/metadata.json (and clap_ckpt/)")
    parser.add_argument("out", help="the folder to write (config.json, model.safetensors, tokenizer)")
    parser.add_argument("--llm", default="Qwen/Qwen2.5-3B", help="the base LM folder or cached hub id")
    parser.add_argument("--clap", help="the AF-CLAP checkpoint (default: clap_ckpt/epoch_16.pt of the release)")
    parser.add_argument("--dtype", default="bfloat16", choices=["bfloat16", "float32"])


def _convert(args):
    from pathlib import Path

    from afcot_core.api import BadInput
    from afcot_flamingo.af2.convert import convert
    from afcot_flamingo.af2.load import llm_folder, released_folder

    release, base = released_folder(args.checkpoint), llm_folder(args.llm)
    if release is None:
        raise BadInput(f"{args.checkpoint}: no safe_ckpt/metadata.json there (nor in the Hugging Face cache)")
    if base is None:
        raise BadInput(f"{args.llm}: no base LM folder (config.json) there (nor in the Hugging Face cache)")
    out = convert(base, release, Path(args.out), Path(args.clap) if args.clap else None, args.dtype)
    print(f"wrote {out}")
    return 0


@hookimpl
def register_commands(register):
    register("af2-convert", "convert NVIDIA's released Audio Flamingo 2 checkpoint into an afcot AF2 folder",
             _convert_args, _convert)
