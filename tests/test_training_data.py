"""The student's data path: seeded shuffle, even split by rank and worker, weighted blend, resume skip, overlong."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
from afcot_flamingo.config import DataSource
from afcot_flamingo.training.data import (
    ShardSource,
    StreamPlan,
    blend,
    epochs_of,
    open_sources,
    worker_batches,
)

from afcot_core.errors import BadInput

from .student_data import write_shards

torch = pytest.importorskip("torch")


@pytest.fixture(scope="module")
def tones(tmp_path_factory):
    return write_shards(tmp_path_factory.mktemp("tones") / "generate", 24, per_shard=5)


def keys(source, epochs, seed=0, slot=0, slots=1, buffer=8):
    stream = epochs_of(source, seed, 0, slot, slots, buffer)
    n = sum(1 for i in range(len(source)) if i % slots == slot)
    return [[stream.__next__()[1] for _ in range(n)] for _ in range(epochs)]


def test_shuffle_is_seeded_and_differs_across_epochs(tones):
    source = ShardSource(tones, "tones", cot=True)
    first, second = keys(source, 2)
    assert sorted(first) == sorted(second) == sorted(f"tone-{i:03d}" for i in range(24))
    assert first != second
    assert keys(source, 2) == [first, second]
    assert keys(source, 1, seed=1)[0] != first
    assert keys(source, 1, buffer=0)[0] != first  # the shard order alone is shuffled too


def test_ranks_and_workers_get_an_even_disjoint_split(tones):
    source = ShardSource(tones, "tones", cot=True)
    parts = [keys(source, 1, slot=s, slots=4)[0] for s in range(4)]
    assert [len(p) for p in parts] == [6, 6, 6, 6]
    assert sorted(k for part in parts for k in part) == sorted(f"tone-{i:03d}" for i in range(24))


def test_blend_honours_weights_within_two_percent():
    stream = blend([3.0, 1.0, 1.0], np.random.default_rng(7))
    draws = Counter(next(stream) for _ in range(10_000))
    for index, share in enumerate([0.6, 0.2, 0.2]):
        assert abs(draws[index] / 10_000 - share) < 0.02


def encode(example):
    """A stand-in tokenisation for the data path alone: one token per character of the conversation."""
    text = example.prompt + example.target
    ids = torch.tensor([ord(c) % 256 for c in text])
    return {"input_ids": ids, "labels": ids.clone(), "attention_mask": torch.ones_like(ids), "key": example.key}


def collate(encoded):
    return {"keys": [e["key"] for e in encoded], "lengths": [int(e["input_ids"].shape[0]) for e in encoded]}


def plan(sources, **kw):
    base = dict(sources=sources, encode=encode, collate=collate, batch_size=2, max_length=10_000, overlong="drop",
                seed=0, rank=0, world=1, workers=0, shuffle_buffer=4)
    return StreamPlan(**{**base, **kw})


def take(stream, n):
    return [next(stream) for _ in range(n)]


def test_a_resumed_stream_continues_where_it_stopped(tones):
    sources = open_sources([], tones, cot=True)
    whole = [b["keys"] for b, _ in take(worker_batches(plan(sources), 0), 20)]
    resumed = [b["keys"] for b, _ in take(worker_batches(plan(sources, skip=13), 0), 7)]
    assert resumed == whole[13:]
    # with two workers each worker skips its own share of the batches
    w = [[b["keys"] for b, _ in take(worker_batches(plan(sources, workers=2), k), 10)] for k in (0, 1)]
    w_resumed = [[b["keys"] for b, _ in take(worker_batches(plan(sources, workers=2, skip=5), k), 3)] for k in (0, 1)]
    assert w_resumed == [w[0][3:6], w[1][2:5]]


def test_overlong_samples_are_dropped_or_truncated_and_counted(tones):
    sources = open_sources([], tones, cot=True)
    batch, stats = next(worker_batches(plan(sources, max_length=150, overlong="truncate"), 0))
    assert max(batch["lengths"]) <= 150 and stats.truncated == 2 and stats.dropped == 0
    with pytest.raises(BadInput, match="no usable training sample"):
        next(worker_batches(plan(sources, max_length=20, overlong="drop"), 0))


def test_blended_sources_are_counted_per_source(tones, tmp_path):
    other = write_shards(tmp_path / "other", 6, per_shard=6, start=100)
    sources = open_sources([DataSource(path=str(tones), weight=3.0, name="cot"),
                            DataSource(path=str(other), weight=1.0, name="sft")], tones, cot=True)
    seen = Counter()
    for _, stats in take(worker_batches(plan(sources, shuffle_buffer=0), 0), 200):
        seen.update(stats.sources)
    assert abs(seen["cot"] / 400 - 0.75) < 0.05


def test_afthink_and_af2_manifest_sources(tones, tmp_path):
    (tmp_path / "audio").mkdir()
    src = ShardSource(tones, "t", cot=True)
    raw = next(iter(src.raws(np.random.default_rng(0))))
    (tmp_path / "audio" / "a.flac").write_bytes(raw[2]["flac"])
    # several turns: the list form (a string sound is read to its second turn, as NVIDIA's loader does)
    afthink = [{"id": "x", "sound": ["a.flac"], "conversations": [
        {"from": "human", "value": "<sound-1>\nWhat is it?"}, {"from": "gpt", "value": "A tone."},
        {"from": "human", "value": "High?"}, {"from": "gpt", "value": "Yes."}]}]
    (tmp_path / "t.json").write_text(json.dumps(afthink))
    # split_path is relative to AF2's data root: the folder above the manifest's folder
    manifest = {"split": "train", "split_path": "audio", "flamingo_task": "t", "total_num": 1,
                "data": {"0": {"name": "a.flac", "prompt": "What?", "output": "A tone."}}}
    (tmp_path / "AF-Task").mkdir()
    (tmp_path / "AF-Task" / "m.json").write_text(json.dumps(manifest))
    audio = str(tmp_path / "audio")
    sources = open_sources([DataSource(kind="afthink", path=str(tmp_path / "t.json"), audio_root=audio),
                            DataSource(kind="af2", path=str(tmp_path / "AF-Task" / "m.json"))], tones, cot=True)
    think, af2 = (s.decode(s.items[0]) for s, _ in sources)
    assert think.turns == (("What is it?", "A tone."), ("High?", "Yes.")) and think.wave.shape == (16000,)
    assert af2.turns == (("What?", "A tone."),) and af2.source == "m"
    afthink[0]["sound"] = ["missing.flac"]
    (tmp_path / "t.json").write_text(json.dumps(afthink))
    with pytest.raises(BadInput, match=r"missing\.flac"):
        open_sources([DataSource(kind="afthink", path=str(tmp_path / "t.json"))], tones, cot=True)


def test_plain_targets_are_the_answer_text_and_a_source_can_blend_cot_with_plain(tones):
    """``cot = false``: the target is the answer's text (``(A) high`` only with ``plain_target = "lettered"``) and
    the prompt has no CoT suffix; a shard source's own ``cot`` overrides train.cot, so the same shards can be
    blended as CoT and as plain samples."""
    raw = next(ShardSource(tones, "t", cot=False).raws(np.random.default_rng(0)))
    answer = json.loads(raw[2]["json"])["item"]["answer"]
    plain = ShardSource(tones, "t", cot=False).decode(raw)
    assert plain.turns[0][1] == answer and "<SUMMARY>" not in plain.turns[0][0]
    lettered = ShardSource(tones, "t", cot=False, plain="lettered").decode(raw)
    assert lettered.turns[0][1].startswith("(") and lettered.turns[0][1].endswith(f") {answer}")
    both = open_sources([DataSource(path=str(tones), name="cot"), DataSource(path=str(tones), name="plain",
                                                                            cot=False)], tones, cot=True)
    texts = [source.decode(raw).turns[0] for source, _ in both]
    assert texts[0][1].startswith("<SUMMARY>") and texts[0][0].endswith("tags.")
    assert texts[1] == plain.turns[0]


def test_a_caption_target_is_the_records_caption_for_describe_the_sound(tones, tmp_path):
    """``plain_target = "caption"`` (the perception stage's data): the prompt is "Describe the sound." and the
    target the record's CoT caption, whatever the question; a record without one names its shard and sample."""
    from afcot_flamingo.training.data import CAPTION_PROMPT

    source = ShardSource(tones, "t", cot=False, plain="caption")
    for raw in list(source.raws(np.random.default_rng(0)))[:4]:
        doc = json.loads(raw[2]["json"])
        assert source.decode(raw).turns == ((CAPTION_PROMPT, doc["cot"]["caption"]),)
        assert doc["cot"]["caption"] == f"A steady {doc['item']['answer']} tone."
    assert ShardSource(tones, "t", cot=True, plain="caption").decode(raw).turns[0][1].startswith("<SUMMARY>")
    shard, key, parts = raw
    doc["cot"] = None
    with pytest.raises(BadInput, match=f"{shard.name}: sample '{key}' is unreadable"):
        source.decode((shard, key, {**parts, "json": json.dumps(doc).encode()}))
