"""Registers the ``ontology``, ``random`` and ``llm`` negative samplers and the ``negatives`` command."""

from __future__ import annotations

from afcot_core.api import hookimpl


@hookimpl
def register_negative_samplers(register):
    from afcot_negatives import llm, samplers

    register("ontology", samplers.OntologySampler, samplers.OntologyConfig,
             "close negatives from an ontology: siblings, then cousins, then a fallback",
             preflight=samplers.preflight)
    register("random", samplers.PoolSampler, samplers.RandomConfig,
             "uniform negatives from the label vocabulary (the ablation control)",
             preflight=samplers.preflight)
    register("llm", llm.LlmSampler, llm.LlmConfig,
             "LLM_create_options: yes/no -> [yes, no], long answers stay open, else 3 LLM distractors",
             preflight=llm.preflight,
             prompts={llm.PROMPT_VERSION: llm.prompt_text(), llm.RELEASE_PROMPT: llm.release_prompt_text()})


@hookimpl
def register_commands(register):
    from afcot_negatives import cli

    register("negatives", "analyze, build and sample multiple-choice negatives", cli.configure, cli.run)
