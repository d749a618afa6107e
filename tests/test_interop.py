"""Our shards are plain WebDataset: `webdataset` and the HF `datasets` webdataset builder read them back whole."""

import io

import msgspec
import pytest
import soundfile as sf
import webdataset as wds
from afcot_io.hf import shard_features

from afcot_core import recipe, runner
from afcot_core.records import Record
from afcot_core.shards import iter_samples
from afcot_core.template import render


@pytest.fixture(scope="module")
def shards(plugins, tmp_path_factory):
    out = tmp_path_factory.mktemp("interop") / "run"
    parsed = recipe.load("quickstart", plugins, ["generate.source.items=16", "generate.shard_size=6"])
    result = runner.run(parsed, plugins, out, ["generate"], show_progress=False)
    paths = sorted((out / "generate").glob("shard-*.tar"))
    assert len(paths) == 3 and result["generate"]["accepted"] >= 8
    ours = {key: parts for path in paths for key, parts in iter_samples(path)}
    assert len(ours) == result["generate"]["accepted"]
    return paths, ours


def test_webdataset_reads_every_sample(shards):
    paths, ours = shards
    samples = list(wds.WebDataset([str(p) for p in paths], shardshuffle=False))
    assert [s["__key__"] for s in samples] == list(ours)
    for sample in samples:
        record = msgspec.json.decode(sample["json"], type=Record)
        assert sample["txt"].decode() == render(record.cot)
        audio, rate = sf.read(io.BytesIO(sample["flac"]))
        assert rate == record.item.audio.sample_rate
        assert len(audio) / rate == pytest.approx(record.item.audio.duration, abs=1e-3)


def test_hf_datasets_webdataset_builder_round_trips_the_records(shards, tmp_path):
    from datasets import load_dataset

    paths, ours = shards
    ds = load_dataset("webdataset", data_files={"train": [str(p) for p in paths]}, split="train",
                      features=shard_features(), cache_dir=str(tmp_path / "hf"))
    assert ds.num_rows == len(ours)
    for row in ds:
        parts = ours[row["__key__"]]
        assert msgspec.convert(row["json"], Record) == msgspec.json.decode(parts["json"], type=Record)
        assert row["txt"] == parts["txt"].decode() and row["flac"] == parts["flac"]
