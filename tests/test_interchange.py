"""AF-Think / AF3 training JSON as NVIDIA's AF3 loader reads it, ``afcot export`` files it takes as written, the
prompt layouts, and the AF2 student's reading of audio and targets (docs/interop.md)."""

import json
import subprocess
import sys
from pathlib import Path

import msgspec
import numpy as np
import pytest
import soundfile as sf
from afcot_io.formats import (
    MULTI_AUDIO,
    PAST_SECOND,
    TEXT_ONLY,
    Conversation,
    afthink_record,
    load_afthink,
    multi_audio_record,
    split_prompt,
)

from afcot_core.errors import BadInput
from afcot_core.template import COT_SUFFIX, inline_prompt

from .conftest import afcot
from .student_data import write_shards

FIXTURES = Path(__file__).parent / "fixtures" / "release"


def by_id(loaded):
    return {c.id: c for c in loaded.records}


def test_string_sound_reads_two_turns_and_drops_the_placeholder_wherever_it_is():
    loaded = load_afthink(FIXTURES / "afthink_string_sound.json")
    convs = by_id(loaded)
    assert convs["s-start"].turns[0][0].startswith("What is making the sound?\n(A) a dog. (B) a bell.")
    assert convs["s-start"].turns[0][1].endswith("</CONCLUSION>")  # the loader strips the end of each turn
    assert convs["s-end"].turns[0][0] == ("Is it raining? Choose the correct option from the following options:\n"
                                          "(A) yes\n(B) no.")
    assert convs["s-middle"].turns[0][0] == "Describe the sound."
    # a string sound: the loader reads the first two turns only; the rest is reported, not read
    assert convs["s-turns"].turns == (("What do you hear?", "A car."),)
    assert loaded.skipped == {PAST_SECOND: ["s-turns"]}
    # duration as written; a missing one is the loader's 10 s
    assert (convs["s-start"].duration, convs["s-middle"].duration, convs["s-end"].duration) == (4.5, 2.0, 10.0)


def test_list_sound_keeps_every_turn_of_one_clip_and_skips_text_only_and_multi_audio_records():
    loaded = load_afthink(FIXTURES / "afthink_list_sound.json")
    convs = by_id(loaded)
    assert list(convs) == ["l-turns"]
    assert convs["l-turns"].sound == "clips/e.wav"
    assert convs["l-turns"].turns == (("What do you hear?", "A car."), ("Is it moving?", "Yes."))
    assert loaded.skipped == {MULTI_AUDIO: ["l-two-clips"], TEXT_ONLY: ["l-no-tag", "text-only"]}
    note = loaded.summary(FIXTURES / "afthink_list_sound.json")
    assert "1 multi-audio record(s) skipped (first: l-two-clips)" in note
    assert "2 text-only record(s) skipped (first: l-no-tag)" in note


def test_json_lines_are_read_as_the_loader_falls_back_to_them():
    convs = load_afthink(FIXTURES / "afthink_lines.jsonl").records
    assert [(c.id, c.sound, c.turns[0][0], c.duration) for c in convs] == [
        ("j1", "clips/a.wav", "What is it?", 1.5), ("j2", "clips/b.wav", "What now?", 10.0)]


@pytest.mark.parametrize("record, message", [
    ({"id": "x", "sound": ["a.wav"], "conversations": [{"from": "human", "value": "<sound-2> hi"},
                                                       {"from": "gpt", "value": "yo"}]}, "<sound-2> names no entry"),
    ({"id": "x", "sound": 3, "conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"}]},
     "record 0.sound: expected a path or a list of paths"),
    ({"id": "x", "sound": "a.wav", "duration": "long",
      "conversations": [{"from": "human", "value": "hi"}, {"from": "gpt", "value": "yo"}]}, "record 0.duration"),
    ({"id": "x", "sound": "a.wav"}, "record 0: missing key 'conversations'"),
])
def test_a_malformed_record_is_bad_input_naming_the_file_record_and_key(tmp_path, record, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([record]))
    with pytest.raises(BadInput, match=message) as exc:
        load_afthink(path)
    assert str(path) in str(exc.value)


def test_multi_turn_and_multi_audio_are_written_in_the_list_form():
    one = afthink_record(Conversation("a", "/x/a.flac", (("Q?", "A."),), 2.0))
    assert one["sound"] == "/x/a.flac" and one["conversations"][0]["value"] == "<sound>\nQ?"
    two = afthink_record(Conversation("b", "/x/b.flac", (("Q?", "A."), ("And?", "B.")), 2.0))
    assert two["sound"] == ["/x/b.flac"] and two["conversations"][0]["value"] == "<sound-1>\nQ?"
    assert [t["value"] for t in two["conversations"][1:]] == ["A.", "And?", "B."]
    both = multi_audio_record("c", ["/x/1.flac", "/x/2.flac"], [("<sound-1>\n<sound-2>\nWhich is louder?", "2.")], 4.0)
    assert both["sound"] == ["/x/1.flac", "/x/2.flac"] and both["duration"] == 4.0
    with pytest.raises(ValueError, match="must name each"):
        multi_audio_record("d", ["/x/1.flac", "/x/2.flac"], [("<sound-1> Q?", "A.")], 4.0)


def test_written_records_read_back_as_written(tmp_path):
    convs = [Conversation("a", "/x/a.flac", (("Q?", "A."),), 2.5),
             Conversation("b", "/x/b.flac", (("Q?", "A."), ("And?", "B.")), 3.0)]
    path = tmp_path / "out.json"
    path.write_text(json.dumps([afthink_record(c) for c in convs]))
    loaded = load_afthink(path)
    assert loaded.records == convs and not loaded.skipped


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    write_shards(run / "generate", 5, per_shard=3)
    return run


def test_export_then_import_round_trips_with_absolute_sound_and_measured_duration(run_dir, tmp_path, plugins):
    result = afcot("export", str(run_dir), "--out", str(tmp_path / "x"), "--name", "tones")
    assert result.returncode == 0, result.stderr
    raw = json.loads((tmp_path / "x" / "tones.json").read_text())
    for rec in raw:
        assert Path(rec["sound"]).is_absolute()
        assert rec["duration"] == pytest.approx(sf.info(rec["sound"]).duration, abs=1e-3) and rec["duration"] > 0
    loaded = load_afthink(tmp_path / "x" / "tones.json")
    assert not loaded.skipped and [c.sound for c in loaded.records] == [rec["sound"] for rec in raw]
    registration = plugins.registry("source").get("afthink", where="test")
    # an absolute sound is used as it is, whatever audio_root says
    config = msgspec.convert({"path": str(tmp_path / "x" / "tones.json"), "audio_root": str(tmp_path)},
                             registration.config)
    items = [it for part in registration.build(config).partitions(10) for it in part]
    assert len(items) == 5 and all(Path(it.audio.path).is_file() for it in items)


OPEN_AS_LOADER = "import json, sys, soundfile as sf; [sf.SoundFile(r['sound']).close() " \
                 "for r in json.load(open(sys.argv[1]))]"


def test_an_exported_sound_opens_from_another_working_directory(run_dir, tmp_path):
    assert afcot("export", str(run_dir), "--out", str(tmp_path / "x")).returncode == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    opened = subprocess.run([sys.executable, "-c", OPEN_AS_LOADER, str(tmp_path / "x" / "afcot.json")],
                            cwd=elsewhere, capture_output=True, text=True)
    assert opened.returncode == 0, opened.stderr


def test_relative_to_names_sound_from_the_training_jobs_folder(run_dir, tmp_path):
    job = tmp_path / "job"
    job.mkdir()
    result = afcot("export", str(run_dir), "--out", str(tmp_path / "x"), "--relative-to", str(job))
    assert result.returncode == 0, result.stderr
    doc = tmp_path / "x" / "afcot.json"
    assert all(r["sound"].startswith("../x/audio/") for r in json.loads(doc.read_text()))
    for cwd, ok in ((job, True), (tmp_path / "x" / "audio", False)):
        opened = subprocess.run([sys.executable, "-c", OPEN_AS_LOADER, str(doc)], cwd=cwd, capture_output=True)
        assert (opened.returncode == 0) is ok


def test_the_model_card_layout_is_the_released_inference_prompt():
    released = (FIXTURES / "inference_CoT_prompt.txt").read_text(encoding="utf-8").rstrip("\n")
    question = "Based on the given audio, identify the source of the church bells."
    choices = ["Church", "School", "Clock Tower", "Fire Station"]
    assert inline_prompt(question, choices, True, "model-card") == released
    assert split_prompt(released) == (question, choices)
    inline = inline_prompt(question, choices, True)
    assert inline == f"{question}\n(A) Church. (B) School. (C) Clock Tower. (D) Fire Station. {COT_SUFFIX}"
    assert split_prompt(inline) == (question, choices)
    with pytest.raises(ValueError, match="unknown prompt layout"):
        inline_prompt(question, choices, True, "chat")


def test_export_writes_the_layout_asked_for(run_dir, tmp_path):
    assert afcot("export", str(run_dir), "--out", str(tmp_path), "--layout", "model-card").returncode == 0
    first = json.loads((tmp_path / "afcot.json").read_text())[0]["conversations"][0]["value"]
    assert "Choose the correct option from the following options:\n(A) " in first
    loaded = load_afthink(tmp_path / "afcot.json").records
    assert all(split_prompt(c.turns[0][0])[1] for c in loaded)


def test_af2_reads_channel_0_of_a_stereo_file_as_released(tmp_path):
    from afcot_flamingo.af2.features import release_wave

    t = np.arange(16000) / 16000
    left, right = np.sin(2 * np.pi * 440 * t), 0.5 * np.sin(2 * np.pi * 97 * t)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), 16000, subtype="FLOAT")
    wave = release_wave(path)
    assert np.allclose(wave, left, atol=1e-6)
    assert np.allclose(release_wave(path.read_bytes()), left, atol=1e-6)
    assert not np.allclose(wave, (left + right) / 2, atol=1e-3)


class Sep:
    """The two attributes of a tokenizer that the AF2 text format reads."""

    sep_token, eos_token = "<SEP>", "<|endoftext|>"


def test_af2_training_text_strips_the_target_as_released():
    from afcot_flamingo.af2.text import training_text

    text = training_text("  What is it? ", "\n<SUMMARY> A </SUMMARY> \n", Sep())
    assert text == "<audio>what is it?<SEP><summary> a </summary><|endofchunk|><|endoftext|>"
