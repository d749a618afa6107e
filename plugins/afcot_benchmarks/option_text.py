"""Benchmarks judged by the official MMAU/MMAR matcher on the model's final answer."""

from __future__ import annotations

from afcot_benchmarks.common import final_answer, lettered_answer, option_prompt
from afcot_benchmarks.matching import Matcher
from afcot_core.benchmark import Benchmark, EvalItem, Judgement, with_cot


class OptionTextBenchmark(Benchmark):
    """Prompt with the choices; extract the last CONCLUSION; judge with ``string_match``.

    With ``lettered`` prompts the options carry letters and a leading letter in the answer selects
    that option's text (a "parsed" protocol); otherwise the answer goes to the matcher unchanged,
    which is the official "non-parsed" protocol.
    """

    lettered: bool = False

    def __init__(self) -> None:
        self._matchers: dict[tuple[str, str, tuple[str, ...]], Matcher] = {}

    def prompt(self, item: EvalItem, cot: bool) -> str:
        return with_cot(option_prompt(item.question, item.choices, self.lettered), cot)

    def extract(self, item: EvalItem, output: str) -> str:
        text = final_answer(output)
        return lettered_answer(text, item.choices) if self.lettered else text

    def judge(self, item: EvalItem, answer: str) -> Judgement:
        key = (item.id, item.answer, item.choices)
        matcher = self._matchers.get(key)
        if matcher is None:
            matcher = self._matchers[key] = Matcher(item.answer, item.choices)
        return Judgement(matcher(answer))
