"""``afcot inspect``: what it says of a run folder, a single shard, a recipe's variants, and of a path that is none."""

import json

import pytest
from afcot_devtools.inspect import describe

from afcot_core import recipe as recipes
from afcot_core import runner
from afcot_core.api import BadInput

from .conftest import QUICKSTART

SETS = ["generate.source.items=12", "generate.shard_size=5", "generate.cache=false"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory, plugins):
    out = tmp_path_factory.mktemp("inspect") / "run"
    runner.run(recipes.load(QUICKSTART, plugins, SETS), plugins, out, stages=["generate"], show_progress=False)
    return out


def test_a_run_folder_gives_its_fingerprint_counts_reasons_and_first_sample(run_dir):
    report = describe(run_dir)
    lock = (run_dir / "recipe.lock.toml").read_text()
    assert report["run"] == str(run_dir) and f'fingerprint = "{report["fingerprint"]}"' in lock
    stats = json.loads((run_dir / "generate/stats.json").read_text())
    total = stats["total"]
    assert (report["shards"], report["shards_done"]) == (3, 3)
    assert (report["items"], report["accepted"], report["rejected"], report["failed"]) == (
        12, total["accepted"], total["rejected"], 0)
    assert report["reject_reasons"] == total["reject_reasons"]
    assert report["stats"]["total"] == total
    sample = report["sample"]
    assert sample["files"] == ["flac", "json", "txt"] and sample["key"].startswith("embedded-")
    assert sample["text"].startswith("<SUMMARY>") and sample["question"] and sample["answer"]
    assert sample["strategy"] in {"alg6-aqa-subquestions", "alg8-classification-mcq"}
    assert describe(run_dir / "generate") | {"run": str(run_dir)} == {k: v for k, v in report.items()
                                                                        if k != "fingerprint"}


def test_a_shard_gives_its_sample_count_and_first_sample(run_dir):
    shard = run_dir / "generate/shard-000000.tar"
    report = describe(shard)
    marker = json.loads((run_dir / "generate/shard-000000.done.json").read_text())
    assert report["shard"] == str(shard) and report["samples"] == marker["counts"]["accepted"]
    assert report["sample"] == describe(run_dir)["sample"]


def test_a_recipe_s_variants_folder_gives_its_comparison(tmp_path):
    doc = {"variants": [{"variant": "cot"}, {"variant": "plain"}], "rows": []}
    (tmp_path / "compare.json").write_text(json.dumps(doc))
    assert describe(tmp_path) == {"run": str(tmp_path), "variants": ["cot", "plain"], "compare": doc}


def test_a_path_that_is_neither_a_run_nor_a_shard_is_named(tmp_path):
    with pytest.raises(BadInput, match=f"^{tmp_path}/nothing: no such run directory or shard$"):
        describe(tmp_path / "nothing")
    with pytest.raises(BadInput, match=f"^{tmp_path}: no shards found \\(expected {tmp_path}/shard-\\*.tar\\)$"):
        describe(tmp_path)
    (tmp_path / "broken.tar").write_bytes(b"not a tar at all" * 40)
    with pytest.raises(BadInput, match=f"^{tmp_path}/broken.tar: not a readable tar shard"):
        describe(tmp_path / "broken.tar")
