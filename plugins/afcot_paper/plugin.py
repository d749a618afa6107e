"""Registers Algorithms 6–9 and the paper's validators."""

from __future__ import annotations

from afcot_core.api import hookimpl


@hookimpl
def register_strategies(register):
    from afcot_paper.algorithms import Alg6, Alg6Config, Alg7, Alg7Config, Alg8, Alg8Config, Alg9, Alg9Config
    from afcot_paper.prompts import all_prompts

    prompts = all_prompts()
    register(Alg6.name, Alg6, Alg6Config, "Algorithm 6: AQA with parallel (BFS) sub-questions", prompts=prompts)
    register(Alg7.name, Alg7, Alg7Config, "Algorithm 7: AQA as an interactive (DFS) LLM-ALM conversation",
             prompts=prompts)
    register(Alg8.name, Alg8, Alg8Config, "Algorithm 8: classification as MCQ, describe + fit per choice",
             prompts=prompts)
    register(Alg9.name, Alg9, Alg9Config,
             "Algorithm 9 (our reconstruction): classification by discriminating questions, choices dropped per round",
             prompts=prompts)


@hookimpl
def register_validators(register):
    from afcot_paper.validators import AcceptConfig, FormatConfig, FormatRules, PaperAccept

    register(PaperAccept.name, PaperAccept, AcceptConfig,
             "the paper's accept rule: prediction ends with the answer OR the LLM judge says inferable")
    register(FormatRules.name, FormatRules, FormatConfig,
             "four tags, caption >= 3 words, >= 2 sub-QAs, conclusion = answer")
