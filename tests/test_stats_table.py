"""``generate/stats.md``: the run statistics as a Markdown table, cell for cell."""

import json

from afcot_devtools import stats_table

HEAD = ("| strategy | source | items | accepted | yield | mean sub-Qs / rounds | calls / accepted (ALM + LLM) "
        "| tokens / accepted | causality rejects | reject reasons |\n|---|---|---|---|---|---|---|---|---|---|\n")


def _row(strategy, source, items, accepted, steps, rate, reasons):
    return {"strategy": strategy, "source": source, "items": items, "accepted": accepted, "yield": accepted / items,
            "mean_steps": steps, "calls_per_accepted": {"alm": 3.456, "llm": 4.0}, "reject_reasons": reasons,
            "causality_rejection_rate": rate, "tokens_per_accepted": 1234.5 + items}


STATS = {"rows": [_row("alg6", "embedded", 12, 9, 2.5, None, {}),
                  _row("alg8", "", 8, 7, None, 0.125, {"format": 2, "causality": 1})],
         "total": _row("all", "", 20, 16, 2.345, 0.0625, {"format": 2, "causality": 1}),
         "token_estimate": "characters / 4"}


def test_one_row_per_strategy_and_source_then_the_total_and_the_token_estimate():
    assert stats_table.markdown(STATS) == HEAD + (
        "| alg6 | embedded | 12 | 9 | 75% | 2.50 | 3.46 + 4.00 | 1246 | - | - |\n"
        "| alg8 | - | 8 | 7 | 88% | - | 3.46 + 4.00 | 1242 | 12% | format 2, causality 1 |\n"
        "| **all** | - | 20 | 16 | 80% | 2.35 | 3.46 + 4.00 | 1254 | 6% | format 2, causality 1 |\n"
        "\nTokens are estimated as characters / 4.\n")


def test_a_run_adds_its_calls_and_replay_cache_answers():
    text = stats_table.markdown({**STATS, "run": {"calls": 40, "cache_hits": 3}})
    assert text.endswith("\nTokens are estimated as characters / 4. This run: 40 teacher calls, 3 answered from the "
                         "replay cache.\n")
    assert stats_table.markdown({**STATS, "run": {}}).endswith("This run: 0 teacher calls, 0 answered from the "
                                                               "replay cache.\n")


def test_the_table_is_written_beside_the_statistics_and_only_when_there_are_some(tmp_path):
    assert stats_table.write(tmp_path) is None and not any(tmp_path.iterdir())
    (tmp_path / "stats.json").write_text(json.dumps(STATS))
    assert stats_table.write(tmp_path) == STATS
    assert (tmp_path / "stats.md").read_text() == stats_table.markdown(STATS)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stats.json", "stats.md"]
