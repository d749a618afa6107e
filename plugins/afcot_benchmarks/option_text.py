"""Benchmarks judged by the official MMAU/MMAR matcher on the model's final answer."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from afcot_benchmarks.common import final_answer, lettered_answer, option_prompt, prediction_of, read_records
from afcot_benchmarks.matching import Matcher
from afcot_benchmarks.protocol import Benchmark, EvalItem, Judgement, Loaded, with_cot


class OptionTextBenchmark(Benchmark):
    """Prompt with the choices; extract the last CONCLUSION; judge with ``string_match``.

    With ``lettered`` prompts the options carry letters and a leading letter in the answer selects
    that option's text (a "parsed" protocol); otherwise the answer goes to the matcher unchanged,
    which is the official "non-parsed" protocol.
    """

    lettered: bool = False
    #: the keys an official prediction file may hold the model's answer under, in order
    prediction_keys: tuple[str, ...] = ()
    #: ``parse_item(record, where, audio_root or None) -> EvalItem`` for this benchmark's schema
    parse_item: Callable[[dict[str, Any], str, Path | None], EvalItem]

    def __init__(self, config: Any) -> None:
        self._matchers: dict[tuple[str, str, tuple[str, ...]], Matcher] = {}
        self.config = config
        self.lettered = getattr(config, "lettered", self.lettered)

    def load(self) -> Loaded:
        path, root = self.config.path(), self.config.audio_dir()
        items = [self.parse_item(r, f"{path}: item {i}", root) for i, r in enumerate(read_records(path))]
        return Loaded(items, [it.id for it in items if it.audio is None])

    def read_predictions(self, path: Path) -> list[tuple[EvalItem, str | None]]:
        pairs = []
        for i, record in enumerate(read_records(path)):
            where = f"{path}: item {i}"
            pairs.append((self.parse_item(record, where, None), prediction_of(record, self.prediction_keys, where)))
        return pairs

    def prompt(self, item: EvalItem, cot: bool) -> str:
        return with_cot(option_prompt(item.question, item.choices, self.lettered), cot)

    def extract(self, item: EvalItem, output: str) -> str:
        text = final_answer(output)
        return lettered_answer(text, item.choices) if self.lettered else text

    def trained_extract(self, item: EvalItem, output: str) -> str:
        """The trained layout letters the options, so a letter selects its option's text."""
        return lettered_answer(final_answer(output), item.choices)

    def judge(self, item: EvalItem, answer: str) -> Judgement:
        key = (item.id, item.answer, item.choices)
        matcher = self._matchers.get(key)
        if matcher is None:
            matcher = self._matchers[key] = Matcher(item.answer, item.choices)
        return Judgement(matcher(answer))
