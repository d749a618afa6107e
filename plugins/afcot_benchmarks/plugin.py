"""Registers AF-Reasoning-Eval, MMAU, MMAR and embedded-eval, the ``evaluate`` stage and ``afcot bench``."""

from __future__ import annotations

from afcot_core.api import hookimpl


@hookimpl
def register_benchmarks(register):
    from afcot_benchmarks import af_eval, embedded_eval, mmar, mmau
    from afcot_benchmarks.common import SELECT_ONE
    from afcot_core.api import COT_SUFFIX

    prompts = {"cot_suffix": COT_SUFFIX, "select_one": SELECT_ONE}
    register("af-reasoning-eval", af_eval.AfReasoningEval, af_eval.AfEvalConfig,
             "AF-Reasoning-Eval (AQA-MCQ, AQA-Yes/No, Classification-mini/-full): letter or option text",
             preflight=af_eval.preflight, prompts={"cot_suffix": COT_SUFFIX})
    register("mmau", mmau.Mmau, mmau.MmauConfig,
             "MMAU test-mini / test, official string_match; task, difficulty, sub-category",
             preflight=mmau.preflight, prompts=prompts)
    register("mmar", mmar.Mmar, mmar.MmarConfig,
             "MMAR, official string_match; modality, category, sub-category",
             preflight=mmar.preflight, prompts=prompts)
    register("embedded-eval", embedded_eval.EmbeddedEval, embedded_eval.EmbeddedEvalConfig,
             "held-out items of the embedded world (lettered options, string_match)",
             prompts={"cot_suffix": COT_SUFFIX})


class _Evaluate:
    """The ``[evaluate]`` stage, imported when a recipe names it."""

    @property
    def settings(self):
        from afcot_benchmarks.stage import EvaluateSettings

        return EvaluateSettings

    def parse(self, table, plugins):
        from afcot_benchmarks.stage import EvaluateStage

        return EvaluateStage().parse(table, plugins)


@hookimpl
def register_stages(register):
    register("evaluate", _Evaluate(), 30)


@hookimpl
def register_commands(register):
    from afcot_benchmarks import cli

    register("bench", "score official prediction files, or run a model on a benchmark",
             cli.configure, cli.run)
