"""The ``manifest`` and ``afthink`` sources: what they read, what they refuse, and the items they give."""

from __future__ import annotations

import json
import re
from pathlib import Path

import msgspec
import numpy as np
import pytest
import soundfile as sf
from afcot_io.afthink import AfThinkConfig, AfThinkSource
from afcot_io.afthink import preflight as afthink_preflight
from afcot_io.manifest import ManifestConfig, ManifestSource, read_manifest
from afcot_io.manifest import preflight as manifest_preflight
from structlog.testing import capture_logs

from afcot_core.api import COT_SUFFIX, BadInput

RATE = 8000


def _wav(path: Path, seconds: float = 0.25) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.zeros(int(RATE * seconds), dtype=np.float32), RATE)
    return path


def _line(n: int, **extra) -> dict:
    return {"id": f"i{n}", "audio": f"{n}.wav", "question": "What is heard?", "answer": "a dog", **extra}


def _write(path: Path, lines: list) -> Path:
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


def _refused(path: Path, message: str) -> None:
    with pytest.raises(BadInput) as info:
        read_manifest(path)
    assert str(info.value) == message


def _items(source, size: int = 100) -> list:
    return [item for part in source.partitions(size) for item in part]


# --- read_manifest ---------------------------------------------------------------------------------------------


def test_a_manifest_path_that_is_missing_or_a_folder_is_refused_saying_which(tmp_path):
    _refused(tmp_path / "nope.jsonl", f"{tmp_path / 'nope.jsonl'}: no such manifest file")
    _refused(tmp_path, f"{tmp_path}: is a folder, not manifest file")


def test_every_manifest_line_is_read_in_order_with_its_defaults(tmp_path):
    path = _write(tmp_path / "m.jsonl", [_line(0), _line(1, kind="classification", choices=["a dog", "a cat"],
                                                          labels=["dog"])])
    first, second = read_manifest(path)
    assert (first.id, first.audio, first.question, first.answer) == ("i0", "0.wav", "What is heard?", "a dog")
    assert (first.kind, first.choices, first.labels) == ("aqa", None, [])
    assert (second.id, second.kind, second.choices, second.labels) == ("i1", "classification", ["a dog", "a cat"],
                                                                        ["dog"])


def test_blank_lines_are_skipped_and_later_lines_keep_their_numbers(tmp_path):
    path = _write(tmp_path / "m.jsonl", [_line(0), "", "   \t", _line(1), "{oops"])
    with pytest.raises(BadInput, match=re.escape(f"{path}:5: ")):
        read_manifest(path)
    _write(path, ["", _line(0), "  ", _line(1), ""])
    assert [line.id for line in read_manifest(path)] == ["i0", "i1"]


def test_a_byte_order_mark_is_dropped_only_from_the_first_line(tmp_path):
    path = tmp_path / "m.jsonl"
    first, second = (json.dumps(_line(n)).encode() for n in range(2))
    path.write_bytes(b"\xef\xbb\xbf" + first + b"\n" + second + b"\n")
    assert [line.id for line in read_manifest(path)] == ["i0", "i1"]
    path.write_bytes(first + b"\n\xef\xbb\xbf" + second + b"\n")
    with pytest.raises(BadInput, match=re.escape(f"{path}:2: ")):
        read_manifest(path)


@pytest.mark.parametrize("bad", [
    {"id": "i1", "audio": "1.wav", "question": "Q?"},  # no answer
    {**_line(1), "kind": "caption"},
    {**_line(1), "extra": 1},
    {**_line(1), "labels": "dog"},
    [1, 2],
], ids=["missing-key", "unknown-kind", "unknown-key", "wrong-type", "not-an-object"])
def test_a_malformed_manifest_line_is_refused_naming_file_and_line(tmp_path, bad):
    path = _write(tmp_path / "m.jsonl", [_line(0), bad])
    with pytest.raises(BadInput, match=re.escape(f"{path}:2: ")):
        read_manifest(path)


def test_repeated_or_empty_ids_are_refused_naming_both_lines(tmp_path):
    path = _write(tmp_path / "m.jsonl", [_line(0), _line(1), {**_line(2), "id": "i0"}])
    _refused(path, f"{path}:3: duplicate id 'i0' (first on line 1)")
    _write(path, [{**_line(0), "id": "i_0"}, {**_line(1), "id": "i.0"}])
    _refused(path, f"{path}:2: id 'i.0' and id 'i_0' (line 1) would both be stored as sample 'i_0'; rename one of them")
    _write(path, [_line(0), {**_line(1), "id": " "}])
    _refused(path, f"{path}:2: empty id")


def test_an_answer_outside_its_choices_is_refused_showing_the_tagged_form(tmp_path):
    path = _write(tmp_path / "m.jsonl", [_line(0, choices=["a dog", "a cat"]), _line(1, choices=["bark", "meow"])])
    _refused(path, f"{path}:2: answer 'a dog' is not one of the choices (as given or with its option tag, "
                   "e.g. '(A) bark')")
    _write(path, [_line(0, choices=[])])
    _refused(path, f"{path}:1: answer 'a dog' is not one of the choices (as given or with its option tag, "
                   "e.g. '(A) ')")


def test_an_answer_is_checked_only_against_choices_it_has(tmp_path):
    path = _write(tmp_path / "m.jsonl", [_line(0), _line(1, choices=["a cat", "a dog"]),
                                         _line(2, answer="(B) a dog", choices=["a cat", "a dog"])])
    assert [line.answer for line in read_manifest(path)] == ["a dog", "a dog", "(B) a dog"]


def test_a_manifest_of_only_blank_lines_holds_no_items(tmp_path):
    path = _write(tmp_path / "m.jsonl", ["", "  "])
    _refused(path, f"{path}: the manifest holds no items")
    path.write_text("")
    _refused(path, f"{path}: the manifest holds no items")


# --- ManifestConfig, audio_root, the source's items -------------------------------------------------------------


def test_a_manifest_limit_must_be_at_least_one(tmp_path):
    path = str(_write(tmp_path / "m.jsonl", [_line(0)]))
    for limit in (0, -3):
        with pytest.raises(msgspec.ValidationError, match=re.escape(
                f"limit = {limit}: must be at least 1 (leave it out to read every item)")):
            msgspec.convert({"path": path, "limit": limit}, ManifestConfig)
    assert msgspec.convert({"path": path, "limit": 1}, ManifestConfig).limit == 1
    assert msgspec.convert({"path": path}, ManifestConfig).limit is None
    assert ManifestSource(ManifestConfig(path=path, limit=1)).count() == 1


def test_manifest_audio_starts_from_the_manifests_folder_unless_audio_root_is_given(tmp_path):
    _wav(tmp_path / "lists" / "0.wav")
    path = _write(tmp_path / "lists" / "m.jsonl", [_line(0)])
    _wav(tmp_path / "clips" / "0.wav", seconds=0.5)
    (item,) = _items(ManifestSource(ManifestConfig(path=str(path))))
    assert item.audio.path == str(tmp_path / "lists" / "0.wav")
    (item,) = _items(ManifestSource(ManifestConfig(path=str(path), audio_root=str(tmp_path / "clips"))))
    assert item.audio.path == str(tmp_path / "clips" / "0.wav") and item.audio.duration == pytest.approx(0.5)


def test_an_audio_root_that_is_missing_or_a_file_is_refused_saying_which(tmp_path):
    path = str(_write(tmp_path / "m.jsonl", [_line(0)]))
    for root, why in ((tmp_path / "none", "no such folder"), (Path(path), "is not a folder")):
        with pytest.raises(BadInput) as info:
            ManifestSource(ManifestConfig(path=path, audio_root=str(root)))
        assert str(info.value) == f"audio_root {root}: {why}"
        assert manifest_preflight(ManifestConfig(path=path, audio_root=str(root))) == [f"audio_root {root}: {why}"]
    assert manifest_preflight(ManifestConfig(path=path, audio_root=str(tmp_path))) == []


def test_a_manifest_item_carries_every_field_of_its_line_and_its_audio(tmp_path):
    path = _write(tmp_path / "m.jsonl", [_line(0, kind="classification", choices=["a cat", "a dog"],
                                                labels=["dog", "animal"])])
    _wav(tmp_path / "0.wav", seconds=0.25)
    (item,) = _items(ManifestSource(ManifestConfig(path=str(path))))
    assert (item.id, item.question, item.answer, item.kind) == ("i0", "What is heard?", "a dog", "classification")
    assert (item.choices, item.labels, item.source) == (["a cat", "a dog"], ["dog", "animal"], str(path))
    assert (item.audio.path, item.audio.format, item.audio.sample_rate) == (str(tmp_path / "0.wav"), "wav", RATE)
    assert item.audio.duration == pytest.approx(0.25)


def test_a_manifest_item_whose_audio_is_missing_is_still_given(tmp_path):
    path = _write(tmp_path / "m.jsonl", [_line(0)])
    (item,) = _items(ManifestSource(ManifestConfig(path=str(path))))
    assert (item.audio.path, item.audio.sample_rate, item.audio.duration) == (str(tmp_path / "0.wav"), 0, 0.0)


def test_manifest_partitions_hold_at_most_size_items_in_order(tmp_path):
    path = _write(tmp_path / "m.jsonl", [_line(n) for n in range(5)])
    source = ManifestSource(ManifestConfig(path=str(path)))
    assert [[item.id for item in part] for part in source.partitions(2)] == [["i0", "i1"], ["i2", "i3"], ["i4"]]
    assert [[item.id for item in part] for part in source.partitions(5)] == [["i0", "i1", "i2", "i3", "i4"]]
    limited = ManifestSource(ManifestConfig(path=str(path), limit=3))
    assert [[item.id for item in part] for part in limited.partitions(1)] == [["i0"], ["i1"], ["i2"]]


# --- afthink ----------------------------------------------------------------------------------------------------


def _record(rec_id: str, sound, human: str, gpt: str, **extra) -> dict:
    return {"id": rec_id, "sound": sound, "conversations": [{"from": "human", "value": human},
                                                            {"from": "gpt", "value": gpt}], **extra}


def _afthink(path: Path, records: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(records))
    return path


INLINE = f"<sound>\nWhat makes the sound?\n(A) A dog. (B) A cat. {COT_SUFFIX}"
TARGET = "<SUMMARY>s</SUMMARY><CAPTION>c</CAPTION><REASONING>r</REASONING><CONCLUSION>(B) A cat</CONCLUSION>"


def test_an_afthink_record_becomes_an_item_with_its_question_options_and_answer(tmp_path):
    path = _afthink(tmp_path / "data" / "think.json", [_record("r0", "a.wav", INLINE, TARGET, duration=0.25)])
    _wav(tmp_path / "data" / "a.wav")
    (item,) = _items(AfThinkSource(AfThinkConfig(path=str(path), kind="classification")))
    assert (item.id, item.question, item.choices) == ("r0", "What makes the sound?", ["A dog", "A cat"])
    assert (item.answer, item.kind, item.source, item.labels) == ("A cat", "classification", "think", [])
    assert (item.audio.path, item.audio.sample_rate) == (str(tmp_path / "data" / "a.wav"), RATE)
    assert item.audio.duration == pytest.approx(0.25)


def test_an_afthink_record_without_options_keeps_its_whole_answer(tmp_path):
    path = _afthink(tmp_path / "t.json", [_record("r0", "a.wav", "<sound>\nWhat is heard?", "A dog barking.\n")])
    (item,) = _items(AfThinkSource(AfThinkConfig(path=str(path))))
    assert (item.question, item.choices, item.answer, item.kind) == ("What is heard?", None, "A dog barking.", "aqa")
    assert item.audio.path == str(tmp_path / "a.wav") and item.audio.sample_rate == 0


def test_afthink_sound_paths_start_from_audio_root_or_the_files_folder(tmp_path):
    path = _afthink(tmp_path / "json" / "t.json", [_record("r0", "x/a.wav", "<sound>\nQ?", "A.")])
    for root, expect in ((None, tmp_path / "json"), ("", tmp_path / "json"), (str(tmp_path / "clips"),
                                                                              tmp_path / "clips")):
        (item,) = _items(AfThinkSource(AfThinkConfig(path=str(path), audio_root=root)))
        assert item.audio.path == str(expect / "x" / "a.wav")


def test_afthink_skips_records_without_one_clip_and_warns_once(tmp_path):
    records = [_record("r0", "a.wav", "<sound>\nQ?", "A."), _record("text", None, "Q?", "A."),
               _record("two", ["a.wav", "b.wav"], "<sound-1> <sound-2> Q?", "A."),
               _record("r3", "b.wav", "<sound>\nQ?", "B.")]
    path = _afthink(tmp_path / "t.json", records)
    with capture_logs() as logs:
        source = AfThinkSource(AfThinkConfig(path=str(path)))
    assert source.count() == 2 and [item.id for item in _items(source)] == ["r0", "r3"]
    assert source.skipped == {"text-only record(s) skipped": ["text"], "multi-audio record(s) skipped": ["two"]}
    warnings = [e for e in logs if e["log_level"] == "warning"]
    assert len(warnings) == 1 and warnings[0]["event"].startswith(f"{path}: ")
    assert "1 multi-audio record(s) skipped (first: two)" in warnings[0]["event"]


def test_afthink_warns_nothing_when_every_record_is_read(tmp_path):
    path = _afthink(tmp_path / "t.json", [_record("r0", "a.wav", "<sound>\nQ?", "A.")])
    with capture_logs() as logs:
        source = AfThinkSource(AfThinkConfig(path=str(path)))
    assert source.skipped == {} and logs == []


def test_afthink_limit_keeps_the_first_records_and_partitions_keep_their_order(tmp_path):
    path = _afthink(tmp_path / "t.json", [_record(f"r{n}", f"{n}.wav", "<sound>\nQ?", "A.") for n in range(5)])
    source = AfThinkSource(AfThinkConfig(path=str(path)))
    assert source.count() == 5
    assert [[item.id for item in part] for part in source.partitions(2)] == [["r0", "r1"], ["r2", "r3"], ["r4"]]
    assert [[item.id for item in part] for part in source.partitions(5)] == [["r0", "r1", "r2", "r3", "r4"]]
    limited = AfThinkSource(AfThinkConfig(path=str(path), limit=3))
    assert limited.count() == 3 and [[i.id for i in p] for p in limited.partitions(1)] == [["r0"], ["r1"], ["r2"]]


def test_afthink_repeated_or_clashing_ids_are_refused_naming_the_records(tmp_path):
    path = _afthink(tmp_path / "t.json", [_record("a", "a.wav", "<sound>\nQ?", "A."),
                                          _record("b", "b.wav", "<sound>\nQ?", "A."),
                                          _record("a", "c.wav", "<sound>\nQ?", "A.")])
    with pytest.raises(BadInput) as info:
        AfThinkSource(AfThinkConfig(path=str(path)))
    assert str(info.value) == f"{path}: record 2: duplicate id 'a' (first on record 0)"
    _afthink(path, [_record("a/b", "a.wav", "<sound>\nQ?", "A."), _record("a.b", "b.wav", "<sound>\nQ?", "A.")])
    with pytest.raises(BadInput, match=re.escape(f"{path}: record 1: id 'a.b' and id 'a/b' (record 0)")):
        AfThinkSource(AfThinkConfig(path=str(path)))
    # a repeat past the limit is never read
    _afthink(path, [_record("a", "a.wav", "<sound>\nQ?", "A."), _record("a", "b.wav", "<sound>\nQ?", "A.")])
    assert AfThinkSource(AfThinkConfig(path=str(path), limit=1)).count() == 1


def test_afthink_preflight_lists_the_audio_files_not_found(tmp_path):
    records = [_record(f"r{n}", f"{n}.wav", "<sound>\nQ?", "A.") for n in range(4)]
    path = _afthink(tmp_path / "json" / "t.json", records)
    clips = tmp_path / "clips"
    _wav(clips / "0.wav")
    _wav(clips / "2.wav")
    config = AfThinkConfig(path=str(path), audio_root=str(clips))
    assert afthink_preflight(config) == [f"{path}: 2 audio file(s) not found under {clips} (first: 1.wav)"]
    assert afthink_preflight(AfThinkConfig(path=str(path), audio_root=str(clips), limit=1)) == []
    assert afthink_preflight(AfThinkConfig(path=str(path), audio_root=str(clips), limit=2)) == [
        f"{path}: 1 audio file(s) not found under {clips} (first: 1.wav)"]
    _wav(clips / "1.wav")
    _wav(clips / "3.wav")
    assert afthink_preflight(config) == []


def test_afthink_preflight_looks_beside_the_json_file_by_default(tmp_path):
    path = _afthink(tmp_path / "json" / "t.json", [_record("r0", "a.wav", "<sound>\nQ?", "A.")])
    assert afthink_preflight(AfThinkConfig(path=str(path))) == [
        f"{path}: 1 audio file(s) not found under {tmp_path / 'json'} (first: a.wav)"]
    _wav(tmp_path / "json" / "a.wav")
    assert afthink_preflight(AfThinkConfig(path=str(path))) == []
    assert afthink_preflight(AfThinkConfig(path=str(path), audio_root="")) == []


def test_afthink_preflight_refuses_a_malformed_file_instead_of_listing_it(tmp_path):
    path = tmp_path / "t.json"
    path.write_text('[{"id": "r0", "sound": "a.wav"}]')
    with pytest.raises(BadInput, match="missing key 'conversations'"):
        afthink_preflight(AfThinkConfig(path=str(path)))
