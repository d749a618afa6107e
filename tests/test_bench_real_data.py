"""The real metadata in ../shared/data: gold answers score 100% on every breakdown, empty strings 0%.

Skipped when the folder is absent (set AFCOT_SHARED_DATA to point elsewhere).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from afcot_benchmarks.af_eval import FILES, AfEvalConfig, AfReasoningEval
from afcot_benchmarks.mmar import Mmar, MmarConfig
from afcot_benchmarks.mmau import Mmau, MmauConfig
from afcot_benchmarks.protocol import Benchmark, EvalItem
from afcot_benchmarks.scoring import score

DATA = Path(os.environ.get("AFCOT_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


def need(path: Path) -> Path:
    if not path.exists():
        pytest.skip(f"reference data not available: {path}")
    return path


def benchmarks() -> list[tuple[str, Benchmark]]:
    return [
        ("mmau", Mmau(MmauConfig(data_dir=str(DATA / "mmau")))),
        ("mmar", Mmar(MmarConfig(data_dir=str(DATA / "mmar")))),
        ("af-reasoning-eval", AfReasoningEval(AfEvalConfig(data_dir=str(DATA / "af_reasoning_eval"),
                                                           subsets=list(FILES)))),
    ]


def gold_output(name: str, item: EvalItem) -> str:
    """What the official file would hold for a perfect model (AF-Reasoning-Eval: its "(X) text" output)."""
    return item.record["output"] if name == "af-reasoning-eval" else item.answer


@pytest.fixture(scope="module", params=benchmarks(), ids=lambda p: p[0])
def loaded(request):
    name, bench = request.param
    need(DATA / {"mmau": "mmau", "mmar": "mmar"}.get(name, "af_reasoning_eval"))
    return name, bench, bench.load().items


def test_gold_scores_100_percent_on_every_breakdown(loaded):
    name, bench, items = loaded
    report = score(bench, [(it, gold_output(name, it)) for it in items], extract=bench.extract_on_score)
    assert report.overall.correct == report.overall.total == len(items)
    for breakdown, groups in {**report.breakdowns, "diagnostics": report.diagnostics}.items():
        for value, stats in groups.items():
            assert stats.correct == stats.total, (breakdown, value)


def test_gold_text_without_letters_also_scores_100_percent(loaded):
    _, bench, items = loaded
    report = score(bench, [(it, it.answer) for it in items], extract=bench.extract_on_score)
    assert report.overall.accuracy == 1.0


def test_empty_predictions_score_0_percent_everywhere(loaded):
    _, bench, items = loaded
    report = score(bench, [(it, "") for it in items], extract=bench.extract_on_score)
    assert report.overall.correct == 0 and report.overall.total == len(items)
    assert all(s.correct == 0 for groups in report.breakdowns.values() for s in groups.values())


def test_official_breakdowns_cover_the_real_data(loaded):
    name, bench, items = loaded
    report = score(bench, [(it, it.answer) for it in items], extract=False)
    sizes = {b: {v: s.total for v, s in g.items()} for b, g in report.breakdowns.items()}
    if name == "mmau":
        assert len(items) == 1000 and sizes["task"] == {"sound": 333, "music": 334, "speech": 333}
        assert sizes["difficulty"] == {"easy": 224, "hard": 236, "medium": 540}
        assert len(sizes["sub-category"]) == 27
    elif name == "mmar":
        assert len(items) == 1000 and sizes["modality"]["mix-sound-music"] == 11
        assert sizes["category"] == {"Signal Layer": 43, "Perception Layer": 404, "Semantic Layer": 412,
                                     "Cultural Layer": 141}
        assert len(sizes["sub-category"]) == 16
    else:
        assert sizes["subset"] == {"AQA-MCQ": 76, "AQA-Yes/No": 74, "Classification-mini": 300,
                                   "Classification-full": 7227}


@pytest.mark.parametrize(("name", "template", "failures"), [
    ("mmau", "({letter}) {answer}", 33), ("mmau", "The answer is ({letter}) {answer}.", 121),
    ("mmar", "({letter}) {answer}", 15), ("mmar", "The answer is ({letter}) {answer}.", 103),
])
def test_letter_prefixed_oracles_fail_where_the_official_matcher_does(name, template, failures):
    """spec/BENCHMARKS.md §1: counts measured with the official script on these exact files."""
    bench = dict(benchmarks())[name]
    need(DATA / name)
    items = bench.load().items
    predictions = [(it, template.format(letter="ABCDEFGH"[it.answer_index or 0], answer=it.answer)) for it in items]
    report = score(bench, predictions, extract=False)
    assert report.overall.total - report.overall.correct == failures


def test_missing_audio_root_reports_every_item(tmp_path):
    need(DATA / "mmau")
    loaded = Mmau(MmauConfig(data_dir=str(DATA / "mmau"), audio_root=str(tmp_path))).load()
    assert len(loaded.missing_audio) == 1000
