"""Run statistics from the shards, correct after a resume; sampled teachers reproducible by seed."""

import json

import pytest
from afcot_devtools.stats_table import markdown

from afcot_core import recipe as recipes
from afcot_core import runner
from afcot_core.shards import iter_samples
from afcot_core.stats import collect

from .conftest import QUICKSTART, afcot

BOTH = ["generate.source.items=24", "generate.shard_size=8", "generate.cache=false"]


def _records(folder):
    return {path.name: path.read_bytes() for path in sorted(folder.glob("generate/*")) if path.suffix in (".tar",
                                                                                                        ".jsonl")}


def test_stats_count_every_record_and_survive_a_resume(tmp_path, plugins):
    sets = [*BOTH, 'generate.strategies.aqa.use="alg7-aqa-interactive"',
            'generate.strategies.classification.use="alg9-classification-interactive"']
    result = runner.run(recipes.load(QUICKSTART, plugins, sets), plugins, tmp_path, stages=["generate"],
                        show_progress=False)["generate"]
    first = json.loads((tmp_path / "generate/stats.json").read_text())
    total = first["total"]
    assert (total["items"], total["accepted"], total["rejected"]) == (24, result["accepted"], result["rejected"])
    rows = {row["strategy"]: row for row in first["rows"]}
    assert set(rows) == {"alg7-aqa-interactive", "alg9-classification-interactive"}
    assert sum(row["items"] for row in rows.values()) == 24
    assert sum(sum(row["reject_reasons"].values()) for row in rows.values()) == total["rejected"]
    for row in rows.values():
        assert row["accepted"] and 2 <= row["mean_steps"] <= 10  # rounds of the accepted chains
        assert row["calls_per_accepted"]["llm"] > row["calls_per_accepted"]["alm"] > 2
        assert row["tokens_per_accepted"] > 100 and row["causality_rejection_rate"] is None
    (tmp_path / "generate/shard-000001.done.json").unlink()  # as if the run died before marking shard 1
    runner.run(recipes.load(QUICKSTART, plugins, sets), plugins, tmp_path, stages=["generate"], show_progress=False)
    again = json.loads((tmp_path / "generate/stats.json").read_text())
    assert {k: v for k, v in again.items() if k != "run"} == {k: v for k, v in first.items() if k != "run"}
    assert collect(tmp_path / "generate")["total"] == total
    table = (tmp_path / "generate/stats.md").read_text()
    assert table == markdown(again) and "| alg7-aqa-interactive | embedded | " in table


def test_causality_rate_and_the_cli_table(tmp_path):
    out = tmp_path / "run"
    result = afcot("recipe", "run", str(QUICKSTART), "--out", str(out), "--stages", "generate",
                   "--set", "generate.source.items=16", "--set", "generate.strategies.aqa.causality=true")
    assert result.returncode == 0, result.stderr
    assert "| alg6-aqa-subquestions | embedded |" in result.stderr  # printed at the end of the run
    stats = json.loads(afcot("inspect", str(out)).stdout)["stats"]
    row = next(r for r in stats["rows"] if r["strategy"] == "alg6-aqa-subquestions")
    assert row["codes"]["causality/checked"] >= 1 and 0 <= row["causality_rejection_rate"] <= 1
    assert row["causality_rejection_rate"] == row["reject_reasons"].get("causality", 0) / row["codes"][
        "causality/checked"]


def test_same_seed_same_records_other_seed_other_replies(tmp_path, plugins):
    def replies(folder, seed):
        recipe = recipes.load(QUICKSTART, plugins, [*BOTH, f"run.seed={seed}"])
        runner.run(recipe, plugins, folder, stages=["generate"], show_progress=False)
        records = [json.loads(parts["json"]) for shard in sorted(folder.glob("generate/shard-*.tar"))
                   for _, parts in iter_samples(shard)]
        return _records(folder), [[call["reply"] for call in r["trace"]] for r in records]

    (files_a, first), (files_b, second), (_, other) = (replies(tmp_path / d, seed) for d, seed in
                                                        (("a", 0), ("b", 0), ("c", 1)))
    assert files_a == files_b and first == second  # the same seed: byte-identical shards and rejects
    assert first != other  # another seed: the sampled teachers say other things


def test_a_damaged_rejects_file_is_named(tmp_path):
    import pytest

    from afcot_core.errors import BadInput

    (tmp_path / "rejects-000000.jsonl").write_text('{"verdict": "rejected", "reason": "gate/x: y"}\n[1, 2\n')
    with pytest.raises(BadInput, match=r"rejects-000000.jsonl:2: not a JSON record"):
        collect(tmp_path)
    (tmp_path / "rejects-000000.jsonl").write_text('{"verdict": "rejected", "reason": "gate/x: y"}\n')
    assert collect(tmp_path)["total"]["reject_reasons"] == {"gate/x": 1}


def test_stats_merge_the_ranks(tmp_path, plugins, monkeypatch):
    recipe = recipes.load(QUICKSTART, plugins, ["generate.source.items=20", "generate.shard_size=5"])
    monkeypatch.setenv("WORLD_SIZE", "2")
    for rank in ("0", "1"):
        monkeypatch.setenv("RANK", rank)
        runner.run(recipe, plugins, tmp_path, stages=["generate"], show_progress=False)
        total = json.loads((tmp_path / "generate/stats.json").read_text())["total"]
        assert total["items"] == (10 if rank == "0" else 20)  # the last rank to finish sees every shard


@pytest.mark.parametrize(("line", "problem"), [
    ('{"verdict": "rejected", "item": 3}', "'item' is not a JSON object"),
    ('{"verdict": "accepted", "chain": "step"}', "'chain' is not a JSON array"),
    ('{"verdict": "rejected", "codes": {"a": 1}}', "'codes' is not a JSON array"),
    ('{"verdict": "rejected", "trace": {"role": "alm"}}', "'trace' is not a JSON array of objects"),
    ('{"verdict": "rejected", "trace": [{"role": "alm"}, "call"]}', "'trace' is not a JSON array of objects"),
])
def test_a_record_whose_parts_have_the_wrong_shape_is_named_with_the_part(tmp_path, line, problem):
    from afcot_core.errors import BadInput

    rejects = tmp_path / "rejects-000000.jsonl"
    rejects.write_text('{"verdict": "rejected", "item": null, "trace": []}\n' + line + "\n")
    with pytest.raises(BadInput) as refused:
        collect(tmp_path)
    assert str(refused.value) == f"{rejects}:2: {problem}"
