"""``afcot inspect``: what it says of a run folder, a single shard, a recipe's variants, and of a path that is none."""

import io
import json
import shutil
import tarfile

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


def _shard(path, parts):
    with tarfile.open(path, "w") as tar:
        for name, data in parts.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_a_sample_without_a_record_or_target_and_one_that_is_not_utf8_are_shown(tmp_path):
    shard = _shard(tmp_path / "a.tar", {"k1.flac": b"fLaC", "k1.txt": b"caf\xe9 <SUMMARY>"})
    assert describe(shard)["sample"] == {"key": "k1", "files": ["flac", "txt"], "text": "caf\ufffd <SUMMARY>",
                                         "question": None, "answer": None, "strategy": None}
    shard = _shard(tmp_path / "b.tar", {"k2.json": b'{"strategy": "alg6"}'})
    assert describe(shard)["sample"] == {"key": "k2", "files": ["json"], "text": "", "question": None,
                                         "answer": None, "strategy": "alg6"}


def test_a_shard_whose_first_record_is_not_json_is_named_with_its_key(tmp_path):
    shard = _shard(tmp_path / "c.tar", {"k3.json": b"{broken", "k3.txt": b"x"})
    with pytest.raises(BadInput, match=f"^{shard}: k3.json: not a JSON record$"):
        describe(shard)


def test_a_run_killed_before_it_marked_a_shard_and_one_whose_shards_are_gone(tmp_path, run_dir):
    unmarked = tmp_path / "unmarked"
    unmarked.mkdir()
    shutil.copy(run_dir / "generate/shard-000000.tar", unmarked / "shard-000000.tar")
    report = describe(unmarked)
    assert (report["shards"], report["shards_done"], report["items"]) == (1, 0, 0)
    assert report["sample"] == describe(run_dir)["sample"]
    gone = tmp_path / "gone"
    gone.mkdir()
    for marker in (run_dir / "generate").glob("shard-*.done.json"):
        shutil.copy(marker, gone / marker.name)
    report = describe(gone)
    assert (report["shards"], report["shards_done"], report["items"], report["sample"]) == (0, 3, 12, None)


def test_a_run_folder_with_a_comparison_beside_its_lock_is_described_as_a_run(tmp_path, run_dir):
    run = tmp_path / "run"
    shutil.copytree(run_dir, run)
    (run / "compare.json").write_text(json.dumps({"variants": [{"variant": "x"}]}))
    report = describe(run)
    assert "variants" not in report and report["shards"] == 3
