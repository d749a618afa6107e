"""``afcot export`` run in this process on small runs made here: the file it writes and where, its one-line report,
the audio beside it and its measured duration, the refusals that name the sample; the WebDataset shards the runs
are made of; the ``datasets`` features that type those shards."""

from __future__ import annotations

import io
import json
import tarfile
import typing
from pathlib import Path

import msgspec
import numpy as np
import pytest
from afcot_io.export import conversations
from afcot_io.formats import af2_manifest
from afcot_io.hf import feature, shard_features

from afcot_core.audio import audio_ref_from_wave
from afcot_core.records import CoT, Item, Record, TeacherCall
from afcot_core.template import COT_SUFFIX, inline_prompt, render

from .conftest import run_cli
from .student_data import tone_record, write_shards


def export(capsys, *args: str) -> tuple[int, str, str]:
    """``afcot export ARGS`` in this process: exit code, stdout, stderr."""
    return run_cli(capsys, "export", *args)


def sink(**config):
    from afcot_core.plugins import default

    registration = default().registry("sink").get("webdataset", where="test")
    return registration.build(msgspec.convert(config, registration.config))


def record(item_id: str, question: str = "Is it high?", answer: str = "high", choices: list[str] | None = None,
           frames: int = 1600, rate: int = 16000, trace: list[TeacherCall] | None = None) -> Record:
    wave = (0.2 * np.sin(np.arange(frames) / 5)).astype(np.float32)
    item = Item(id=item_id, audio=audio_ref_from_wave(wave, rate), question=question, answer=answer,
                choices=choices)
    cot = CoT(summary="I listen.", caption="A tone.", reasoning="It is so.", conclusion=answer)
    return Record(item=item, strategy="test", verdict="accepted", cot=cot, trace=trace or [])


def run_of(tmp_path: Path, *records: Record) -> Path:
    """A run folder whose ``generate/`` holds ``records`` in one shard."""
    (tmp_path / "run" / "generate").mkdir(parents=True)
    sink().write(tmp_path / "run" / "generate" / "shard-000000.tar", list(records))
    return tmp_path / "run"


@pytest.fixture
def tones(tmp_path):
    """A run of three tone records (``tone-000``..``tone-002``) in two shards."""
    write_shards(tmp_path / "tones" / "generate", 3, per_shard=2)
    return tmp_path / "tones"


def test_export_reports_the_file_it_wrote_its_record_count_and_format_on_one_line(tones, tmp_path, capsys):
    code, out, err = export(capsys, str(tones), "--out", str(tmp_path / "o"), "--name", "t")
    assert (code, err) == (0, "")
    assert out == json.dumps({"file": str(tmp_path / "o" / "t.json"), "records": 3, "format": "afthink"}) + "\n"
    code, out, err = export(capsys, str(tones), "--out", str(tmp_path / "o"), "--format", "af2", "--name", "T")
    assert (code, err) == (0, "")
    assert out == json.dumps({"file": str(tmp_path / "o" / "T" / "train.json"), "records": 3, "format": "af2"}) + "\n"


def test_the_afthink_file_has_one_space_indents_and_keeps_non_ascii_text(tmp_path, capsys):
    run = run_of(tmp_path, record("clé-1", question="Quelle hauteur ? ♪", answer="aiguë", choices=["aiguë", "grave"]))
    code, _, err = export(capsys, str(run), "--out", str(tmp_path / "o"))
    assert code == 0, err
    text = (tmp_path / "o" / "afcot.json").read_text(encoding="utf-8")
    doc = json.loads(text)
    assert text == json.dumps(doc, indent=1, ensure_ascii=False) + "\n"
    assert doc[0]["id"] == "clé-1" and '"clé-1"' in text and "Quelle hauteur ? ♪" in text
    assert doc[0]["conversations"][0]["value"] == f"<sound>\nQuelle hauteur ? ♪\n(A) aiguë. (B) grave. {COT_SUFFIX}"


def test_a_relative_out_gives_absolute_sounds_of_the_audio_written_under_it(tones, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    code, _, err = export(capsys, str(tones), "--out", "a/b")  # neither folder exists yet
    assert code == 0, err
    doc = json.loads((tmp_path / "a" / "b" / "afcot.json").read_text())
    assert [r["sound"] for r in doc] == [str(tmp_path.resolve() / "a" / "b" / "audio" / f"tone-00{i}.flac")
                                         for i in range(3)]
    assert [r["id"] for r in doc] == ["tone-000", "tone-001", "tone-002"]
    for i, rec in enumerate(doc):
        assert Path(rec["sound"]).read_bytes() == tone_record(i).item.audio.data
        assert rec["duration"] == 1.0
        assert rec["conversations"][1]["value"] == render(tone_record(i).cot)


def test_a_name_with_folders_files_the_export_in_them(tones, tmp_path, capsys):
    code, out, err = export(capsys, str(tones), "--out", str(tmp_path / "o"), "--name", "sets/v1/tones")
    assert code == 0, err
    assert json.loads(out)["file"] == str(tmp_path / "o" / "sets" / "v1" / "tones.json")
    assert len(json.loads((tmp_path / "o" / "sets" / "v1" / "tones.json").read_text())) == 3
    code, _, err = export(capsys, str(tones), "--out", str(tmp_path / "o"), "--format", "af2", "--split", "a/b/dev")
    assert code == 0, err
    assert json.loads((tmp_path / "o" / "afcot" / "a" / "b" / "dev.json").read_text())["split"] == "a/b/dev"


def test_the_model_card_layout_lists_the_options_on_their_own_lines(tones, tmp_path, capsys):
    for format, args in (("afthink", []), ("af2", ["--format", "af2"])):
        code, _, err = export(capsys, str(tones), "--out", str(tmp_path / format), "--layout", "model-card", *args)
        assert code == 0, err
    afthink = json.loads((tmp_path / "afthink" / "afcot.json").read_text())
    af2 = json.loads((tmp_path / "af2" / "afcot" / "train.json").read_text())["data"]
    for i in range(3):
        item = tone_record(i).item
        prompt = inline_prompt(item.question, item.choices, True, "model-card")
        assert prompt.startswith(f"{item.question} Choose the correct option from the following options:\n(A) ")
        assert afthink[i]["conversations"][0]["value"] == f"<sound>\n{prompt}" and af2[str(i)]["prompt"] == prompt


def test_exporting_again_into_the_same_folder_rewrites_the_file(tones, tmp_path, capsys):
    for _ in range(2):
        code, _, err = export(capsys, str(tones), "--out", str(tmp_path / "o"))
        assert code == 0, err
    assert len(json.loads((tmp_path / "o" / "afcot.json").read_text())) == 3
    assert sorted(p.name for p in (tmp_path / "o").iterdir()) == ["afcot.json", "audio"]


def test_relative_to_names_each_sound_from_that_folder(tones, tmp_path, monkeypatch, capsys):
    (tmp_path / "job").mkdir()
    monkeypatch.chdir(tmp_path / "job")
    code, _, err = export(capsys, str(tones), "--out", str(tmp_path / "x"), "--relative-to", ".")
    assert code == 0, err
    doc = json.loads((tmp_path / "x" / "afcot.json").read_text())
    assert [r["sound"] for r in doc] == [f"../x/audio/tone-00{i}.flac" for i in range(3)]
    assert all(Path(r["sound"]).is_file() for r in doc)


def test_relative_to_a_folder_reached_through_a_link_names_sound_from_where_the_link_leads(tones, tmp_path, capsys):
    (tmp_path / "deep" / "job").mkdir(parents=True)
    (tmp_path / "job").symlink_to(tmp_path / "deep" / "job")
    code, _, err = export(capsys, str(tones), "--out", str(tmp_path / "x"), "--relative-to", str(tmp_path / "job"))
    assert code == 0, err
    sounds = [r["sound"] for r in json.loads((tmp_path / "x" / "afcot.json").read_text())]
    assert sounds == [f"../../x/audio/tone-00{i}.flac" for i in range(3)]
    assert all((tmp_path / "job" / s).is_file() for s in sounds)  # the OS resolves '..' from the link's target


def test_an_af2_export_refuses_relative_to(tones, tmp_path, capsys):
    code, _, err = export(capsys, str(tones), "--out", str(tmp_path / "o"), "--format", "af2", "--relative-to", ".")
    assert code == 2
    assert err == "error: --relative-to: AF2 manifests name audio relative to their split_path\n"
    assert not (tmp_path / "o").exists()


def test_an_af2_export_files_its_split_under_the_name_with_the_task_and_cot_targets(tones, tmp_path, capsys):
    code, _, err = export(capsys, str(tones), "--out", str(tmp_path / "o"), "--format", "af2", "--name", "Tones",
                          "--split", "dev", "--task", "Pitch-CoT")
    assert code == 0, err
    doc = json.loads((tmp_path / "o" / "Tones" / "dev.json").read_text())
    records = [tone_record(i) for i in range(3)]
    assert doc == af2_manifest([], "dev", "Tones/audio", "Pitch-CoT") | {"total_num": 3, "data": {
        str(i): {"name": f"tone-00{i}.flac", "duration": 1.0, "output": render(r.cot),
                 "prompt": inline_prompt(r.item.question, r.item.choices, True)} for i, r in enumerate(records)}}
    for i, r in enumerate(records):
        assert (tmp_path / "o" / "Tones" / "audio" / f"tone-00{i}.flac").read_bytes() == r.item.audio.data


@pytest.mark.parametrize("plain_target, targets", [("answer", ["high", "low"]), ("lettered", ["(A) high", "(B) low"])])
def test_afthink_plain_targets_are_the_answer_or_its_lettered_option(tmp_path, capsys, plain_target, targets):
    run = run_of(tmp_path, record("a", answer="high", choices=["high", "low"]),
                 record("b", answer="low", choices=["high", "low"]))
    code, _, err = export(capsys, str(run), "--out", str(tmp_path / "o"), "--no-cot", "--plain-target", plain_target)
    assert code == 0, err
    doc = json.loads((tmp_path / "o" / "afcot.json").read_text())
    assert [r["conversations"][1]["value"] for r in doc] == targets
    assert all(r["conversations"][0]["value"] == "<sound>\nIs it high?\n(A) high. (B) low." for r in doc)


def test_a_yes_no_question_without_choices_is_offered_yes_and_no(tmp_path, capsys):
    dog = record("q", question="Is there a dog?", answer="Yes")
    run = run_of(tmp_path, dog)
    for args, prompt, target in (([], f"Is there a dog?\n(A) yes. (B) no. {COT_SUFFIX}", render(dog.cot)),
                                 (["--no-cot"], "Is there a dog?\n(A) yes. (B) no.", "yes"),
                                 (["--no-cot", "--plain-target", "lettered"], "Is there a dog?\n(A) yes. (B) no.",
                                  "(A) yes")):
        code, _, err = export(capsys, str(run), "--out", str(tmp_path / "o"), *args)
        assert code == 0, err
        turns = json.loads((tmp_path / "o" / "afcot.json").read_text())[0]["conversations"]
        assert [t["value"] for t in turns] == [f"<sound>\n{prompt}", target]


def test_an_id_that_is_no_file_name_is_kept_and_its_audio_is_stored_under_its_sample_key(tmp_path, capsys):
    run = run_of(tmp_path, record("set/a.1"))
    code, _, err = export(capsys, str(run), "--out", str(tmp_path / "o"))
    assert code == 0, err
    rec = json.loads((tmp_path / "o" / "afcot.json").read_text())[0]
    assert rec["id"] == "set/a.1" and rec["sound"] == str((tmp_path / "o" / "audio" / "set_a_1.flac").resolve())


@pytest.mark.parametrize("frames, rate, seconds", [(12345, 16000, 0.772), (4000, 8000, 0.5), (22050, 44100, 0.5)])
def test_the_duration_is_measured_from_the_audio_to_the_millisecond(tmp_path, capsys, frames, rate, seconds):
    run = run_of(tmp_path, record("d", frames=frames, rate=rate))
    code, _, err = export(capsys, str(run), "--out", str(tmp_path / "o"))
    assert code == 0, err
    assert json.loads((tmp_path / "o" / "afcot.json").read_text())[0]["duration"] == seconds


def test_conversations_default_to_the_inline_layout_and_the_answers_text(tmp_path):
    run = run_of(tmp_path, record("a", answer="low", choices=["high", "low"]))
    convs = list(conversations(sorted((run / "generate").glob("shard-*.tar")), False, tmp_path / "audio", "clips/"))
    assert [(c.id, c.sound, c.turns) for c in convs] == [
        ("a", "clips/a.flac", (("Is it high?\n(A) high. (B) low.", "low"),))]
    assert (tmp_path / "audio" / "a.flac").is_file()


def shard_of(tmp_path: Path, **parts: bytes) -> Path:
    """A run whose one shard holds sample ``s1`` with exactly ``parts`` (extension -> bytes)."""
    shard = tmp_path / "run" / "generate" / "shard-000000.tar"
    shard.parent.mkdir(parents=True)
    with tarfile.open(shard, "w") as tar:
        for ext, data in parts.items():
            info = tarfile.TarInfo(f"s1.{ext}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return shard


GOOD = record("s1")
GOOD_PARTS = {"flac": GOOD.item.audio.data, "json": msgspec.json.encode(GOOD), "txt": render(GOOD.cot).encode()}


@pytest.mark.parametrize("change, args, why", [
    ({"txt": None}, [], "('txt')"),
    ({"flac": None}, ["--no-cot"], "('flac')"),
    ({"json": b'{"items": {}}'}, [], "('item')"),
    ({"json": b"{not json"}, [], "(Expecting property name enclosed in double quotes: line 1 column 2 (char 1))"),
    ({"txt": b"\xff"}, [], "('utf-8' codec can't decode byte 0xff in position 0: invalid start byte)"),
])
def test_an_unreadable_sample_is_refused_naming_its_shard_and_key(tmp_path, capsys, change, args, why):
    parts = {ext: data for ext, data in {**GOOD_PARTS, **change}.items() if data is not None}
    shard = shard_of(tmp_path, **parts)
    code, out, err = export(capsys, str(tmp_path / "run"), "--out", str(tmp_path / "o"), *args)
    assert (code, out, err) == (2, "", f"error: {shard}: sample 's1' is unreadable {why}\n")


def test_a_sample_without_a_cot_target_exports_as_a_plain_answer(tmp_path, capsys):
    shard_of(tmp_path, flac=GOOD_PARTS["flac"], json=GOOD_PARTS["json"])
    code, _, err = export(capsys, str(tmp_path / "run"), "--out", str(tmp_path / "o"), "--no-cot")
    assert code == 0, err
    assert json.loads((tmp_path / "o" / "afcot.json").read_text())[0]["conversations"][1]["value"] == "high"


def test_a_sample_whose_audio_is_not_audio_is_refused_naming_it(tmp_path, capsys):
    shard = shard_of(tmp_path, **{**GOOD_PARTS, "flac": b"not audio at all"})
    code, _, err = export(capsys, str(tmp_path / "run"), "--out", str(tmp_path / "o"))
    assert code == 2
    assert err.startswith(f"error: {shard}: sample 's1': the audio is unreadable (")
    assert "Format not recognised" in err and err.endswith(")\n")


# the WebDataset sink


def members(shard: Path) -> list[tarfile.TarInfo]:
    with tarfile.open(shard) as tar:
        return tar.getmembers()


def test_a_shard_holds_each_samples_flac_json_and_txt_in_that_order(tmp_path):
    records = [record("a.1", trace=[TeacherCall(role="alm", model="m", prompt="p", reply="r")]), record("b")]
    sink().write(tmp_path / "s.tar", records)
    with tarfile.open(tmp_path / "s.tar") as tar:
        assert tar.getnames() == ["a_1.flac", "a_1.json", "a_1.txt", "b.flac", "b.json", "b.txt"]
        for info in tar.getmembers():
            assert (info.mtime, info.mode, info.isfile()) == (0, 0o644, True)
        for key, r in (("a_1", records[0]), ("b", records[1])):
            assert tar.extractfile(f"{key}.flac").read() == r.item.audio.data
            assert tar.extractfile(f"{key}.txt").read() == render(r.cot).encode()
            stored = msgspec.json.decode(tar.extractfile(f"{key}.json").read(), type=Record)
            assert stored.item.audio.data is None and stored.item.audio.sha256 == r.item.audio.sha256
            assert msgspec.structs.replace(stored, item=r.item) == r  # the trace is kept by default


def test_a_shard_without_audio_or_trace_keeps_only_the_record_and_its_target(tmp_path):
    r = record("a", trace=[TeacherCall(role="llm", model="m", prompt="p", reply="r")])
    sink(audio=False, trace=False).write(tmp_path / "s.tar", [r])
    with tarfile.open(tmp_path / "s.tar") as tar:
        assert tar.getnames() == ["a.json", "a.txt"]
        stored = msgspec.json.decode(tar.extractfile("a.json").read(), type=Record)
    assert stored.trace == [] and stored.cot == r.cot
    sink(audio=True, trace=False).write(tmp_path / "t.tar", [r])
    assert [m.name for m in members(tmp_path / "t.tar")] == ["a.flac", "a.json", "a.txt"]


def test_a_shard_stores_a_long_id_whole(tmp_path):
    long_id = "clip-" + "x" * 150
    sink().write(tmp_path / "s.tar", [record(long_id)])
    assert [m.name for m in members(tmp_path / "s.tar")] == [f"{long_id}.{ext}" for ext in ("flac", "json", "txt")]


def test_two_ids_stored_under_one_sample_key_are_refused_naming_both(tmp_path):
    from afcot_core.errors import BadInput

    with pytest.raises(BadInput) as err:
        sink().write(tmp_path / "s.tar", [record("a/b"), record("c"), record("a.b")])
    assert str(err.value) == ("item ids 'a/b' and 'a.b' would both be stored as sample 'a_b'; the source must give "
                              "ids that stay distinct")


# the datasets features


class Renamed(msgspec.Struct, rename="camel"):
    sample_rate: int
    tags: list[str]
    pair: tuple[float, float]
    kind: typing.Literal["aqa", "classification"] = "aqa"
    note: str | None = None
    flag: bool = False
    blob: bytes = b""


def test_a_structs_feature_has_its_encoded_field_names_and_typed_columns():
    import datasets

    assert feature(Renamed) == {
        "sampleRate": datasets.Value("int64"), "tags": datasets.List(datasets.Value("string")),
        "pair": datasets.List(datasets.Value("float64"), length=2), "kind": datasets.Value("string"),
        "note": datasets.Value("string"), "flag": datasets.Value("bool"), "blob": datasets.Value("binary")}
    assert feature(int | None) == feature(None | int) == datasets.Value("int64")
    assert feature(typing.Literal[3, 4]) == datasets.Value("int64")
    assert feature(typing.Literal["only"]) == datasets.Value("string")
    assert feature(tuple[str, str, str]) == datasets.List(datasets.Value("string"), length=3)
    assert feature(tuple[int]) == datasets.List(datasets.Value("int64"), length=1)


@pytest.mark.parametrize("hint, message", [
    (int | str, "no feature for the union int | str"),
    (int | str | None, "no feature for the union int | str | None"),
    (tuple[int, str], "no feature for the mixed tuple tuple[int, str]"),
    (dict, "no feature for <class 'dict'>"),
    (complex, "no feature for <class 'complex'>"),
])
def test_a_hint_without_a_feature_is_refused_naming_it(hint, message):
    with pytest.raises(TypeError) as err:
        feature(hint)
    assert str(err.value) == message


def test_the_shard_features_are_the_key_url_audio_record_and_target_columns():
    import datasets

    features = shard_features()
    assert list(features) == ["__key__", "__url__", "flac", "json", "txt"]
    assert features["__key__"] == features["__url__"] == features["txt"] == datasets.Value("string")
    assert features["flac"] == datasets.Value("binary")
    assert features["json"] == feature(Record) and features["json"]["item"]["audio"]["sample_rate"] == \
        datasets.Value("int64")
    assert features["json"]["chain"] == datasets.List(datasets.List(datasets.Value("string"), length=2))
    assert shard_features(audio_decoded=True)["flac"] == datasets.Audio()
    assert {k: v for k, v in shard_features(audio_decoded=True).items() if k != "flac"} == \
        {k: v for k, v in features.items() if k != "flac"}
