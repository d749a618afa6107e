"""``afcot export`` (AF-Think / AF3 JSON, AF2 manifests), the ``afthink`` source, and the dataset card."""

from __future__ import annotations

import json
from types import SimpleNamespace

import msgspec
import pytest
from afcot_io.formats import read_af2_manifest, read_afthink

from afcot_core import cli
from afcot_core.api import LAYOUTS
from afcot_core.errors import BadInput
from afcot_core.shards import iter_samples
from afcot_core.template import inline_prompt

from .conftest import afcot, parse_cli
from .student_data import tone_item, write_shards


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    write_shards(run / "generate", 7, per_shard=3)
    return run


def export(capsys, *args: str) -> SimpleNamespace:
    """``afcot export ARGS`` in this process (so the mutation runs see the code it runs): exit code, stdout, stderr."""
    code = cli.main(["export", *args])
    captured = capsys.readouterr()
    return SimpleNamespace(returncode=code, stdout=captured.out, stderr=captured.err)


def originals(run_dir):
    return {json.loads(p["json"])["item"]["id"]: (json.loads(p["json"])["item"], p["txt"].decode(), p["flac"])
            for shard in sorted((run_dir / "generate").glob("shard-*.tar")) for _, p in iter_samples(shard)}


def test_afthink_export_round_trips_every_record(run_dir, tmp_path, plugins, capsys):
    result = export(capsys, str(run_dir), "--out", str(tmp_path), "--name", "tones")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["records"] == 7
    raw = json.loads((tmp_path / "tones.json").read_text())
    assert raw[0]["conversations"][0]["value"].startswith("<sound>\n")
    assert set(raw[0]) == {"id", "sound", "duration", "conversations"}
    before = originals(run_dir)
    convs = read_afthink(tmp_path / "tones.json")
    assert sorted(c.id for c in convs) == sorted(before)
    for conv in convs:
        item, target, flac = before[conv.id]
        assert conv.turns == ((inline_prompt(item["question"], item["choices"], True), target),)
        assert (tmp_path / conv.sound).read_bytes() == flac
    # the afthink source gives back the items, to regenerate CoT for them
    registration = plugins.registry("source").get("afthink", where="test")
    source = registration.build(msgspec.convert({"path": str(tmp_path / "tones.json")}, registration.config))
    items = [it for part in source.partitions(4) for it in part]
    assert len(items) == 7
    for it in items:
        original = tone_item(int(it.id.split("-")[1]))
        assert (it.question, it.choices, it.answer) == (original.question, original.choices, original.answer)
        assert it.audio.sample_rate == 16000


def test_af2_manifest_and_plain_answers(run_dir, tmp_path, capsys):
    result = export(capsys, str(run_dir / "generate"), "--out", str(tmp_path), "--format", "af2", "--no-cot",
                    "--name", "Tones-AQA")
    assert result.returncode == 0, result.stderr
    folder, convs = read_af2_manifest(tmp_path / "Tones-AQA" / "train.json")
    doc = json.loads((tmp_path / "Tones-AQA" / "train.json").read_text())
    assert doc["total_num"] == len(convs) == 7 and doc["flamingo_task"] == "AF-CoT"
    before = originals(run_dir)
    for conv in convs:
        item = before[conv.sound.removesuffix(".flac")][0]
        prompt, target = conv.turns[0]
        assert prompt == inline_prompt(item["question"], item["choices"], False) and "<SUMMARY>" not in prompt
        assert target == item["answer"]  # the answer's text, as the judge reads it
        assert (tmp_path / folder / conv.sound).is_file()
    result = export(capsys, str(run_dir / "generate"), "--out", str(tmp_path / "l"), "--format", "af2", "--no-cot",
                    "--name", "Tones-AQA", "--plain-target", "lettered")
    assert result.returncode == 0, result.stderr
    for conv in read_af2_manifest(tmp_path / "l" / "Tones-AQA" / "train.json")[1]:
        item = before[conv.sound.removesuffix(".flac")][0]
        assert conv.turns[0][1] == f"({'AB'[item['choices'].index(item['answer'])]}) {item['answer']}"


def test_export_bad_input_names_the_folder(tmp_path, capsys):
    result = export(capsys, str(tmp_path), "--out", str(tmp_path / "x"))
    assert result.returncode == 2 and str(tmp_path) in result.stderr and "no shard" in result.stderr
    assert afcot("export", str(tmp_path), "--out", str(tmp_path / "x")).returncode == 2  # the installed command too


def test_dataset_card_counts_sources_and_algorithms(run_dir):
    from afcot_devtools import datacard

    path = datacard.write(run_dir / "generate", license="cc-by-4.0")
    text = path.read_text()
    assert text.startswith("---\n") and text.count("\n---\n") >= 1
    meta = text.split("---\n")[1]
    assert 'license: "cc-by-4.0"' in meta and "accepted: 7" in meta
    assert '- source: "unknown"\n      algorithm: "test"\n      items: 7\n      accepted: 7' in meta
    assert "| unknown | test | 7 | 7 |" in text


@pytest.mark.parametrize("ids, message", [
    (["a/b", "a.b"],
     "record 1: id 'a.b' and id 'a/b' (record 0) would both be stored as sample 'a_b'; rename one of them"),
    (["x", "y", "x"], "record 2: duplicate id 'x' (first on record 0)"),
    (["x", " "], "record 1: empty id"),
])
def test_the_afthink_source_refuses_ids_that_cannot_be_told_apart(tmp_path, plugins, ids, message):
    path = tmp_path / "think.json"
    turns = [{"from": "human", "value": "<sound>\nq?"}, {"from": "gpt", "value": "yes"}]
    path.write_text(json.dumps([{"id": i, "sound": f"{n}.wav", "conversations": turns} for n, i in enumerate(ids)]))
    registration = plugins.registry("source").get("afthink", where="test")
    with pytest.raises(BadInput) as err:
        registration.build(msgspec.convert({"path": str(path)}, registration.config))
    assert str(err.value) == f"{path}: {message}"


def test_an_afthink_file_that_is_not_a_list_of_objects_is_named(tmp_path):
    path = tmp_path / "think.json"
    path.write_text('[{"sound": "a.wav", "conversations": []}, 3]')
    with pytest.raises(BadInput) as err:
        read_afthink(path)
    assert str(err.value) == f"{path}: entry 1: expected an object, got int"
    path.write_text('{"sound": "a.wav"}')
    with pytest.raises(BadInput) as err:
        read_afthink(path)
    assert str(err.value) == f"{path}: expected a JSON list of records, got dict"


EXPORT_DEFAULTS = {"format": "afthink", "name": "afcot", "split": "train", "task": "AF-CoT", "cot": True,
                   "relative_to": None, "plain_target": "answer", "layout": "inline"}


@pytest.fixture
def parse(plugins):
    return lambda *args: vars(parse_cli(plugins, "export", *args))


def test_export_s_defaults_are_the_afthink_file_with_cot_targets(parse):
    args = parse("runs/x", "--out", "o")
    assert {k: args[k] for k in ("source", "out", *EXPORT_DEFAULTS)} == {"source": "runs/x", "out": "o",
                                                                          **EXPORT_DEFAULTS}
    assert parse("r", "--out", "o", "--no-cot")["cot"] is False
    assert parse("r", "--out", "o", "--relative-to", "d")["relative_to"] == "d"


def test_export_takes_each_of_its_choices_and_refuses_anything_else(parse, capsys):
    for option, choices in (("--format", ("afthink", "af2")), ("--plain-target", ("answer", "lettered")),
                            ("--layout", tuple(LAYOUTS))):
        for choice in choices:
            assert parse("r", "--out", "o", option, choice)[option.lstrip("-").replace("-", "_")] == choice
    for args in (["r", "--out", "o", "--format", "af3"], ["r", "--out", "o", "--plain-target", "letter"],
                 ["r", "--out", "o", "--layout", "x"], ["r"], []):
        with pytest.raises(SystemExit) as exit:
            parse(*args)
        assert exit.value.code == 2
    capsys.readouterr()
