"""What afcot reads from this machine: model weights (a folder or the Hugging Face cache), audio files, JSON files,
and standard streams whose reader may leave; with the fingerprints, errors and sampler protocol they rely on."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import random
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from afcot_core import audio, weights
from afcot_core.digest import digest
from afcot_core.errors import (
    PROGRAMMING_ERRORS,
    AfcotError,
    BadInput,
    Rejected,
    RunIncomplete,
    TeacherError,
    TransientError,
)
from afcot_core.files import json_objects, read_json
from afcot_core.negatives import AsyncNegativeSampler, NegativeSampler, make_rng
from afcot_core.records import AudioRef
from afcot_core.streams import Forgiving, forgiving

from .conftest import GonePipe

# --- the Hugging Face cache and model folders ----------------------------------------------------------------


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    """An empty HF hub cache named by HF_HUB_CACHE, with the working directory elsewhere (so 'Org/name' is not
    a folder next to it)."""
    hub = tmp_path / "hub-cache"
    hub.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(hub))
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return hub


def _snapshot(hub: Path, repo_dir: str, revision: str, mtime: float | None = None, config: bool = True) -> Path:
    """``hub/<repo_dir>/snapshots/<revision>/`` as ``hf download`` leaves it (config.json with mtime ``mtime``)."""
    folder = hub / repo_dir / "snapshots" / revision
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"weights")
    if config:
        (folder / "config.json").write_text("{}")
        if mtime is not None:
            os.utime(folder / "config.json", (mtime, mtime))
    return folder


def test_hf_hub_cache_names_the_cache_before_hf_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    assert weights.hf_cache_dir() == tmp_path / "hub-cache"


def test_an_empty_hf_hub_cache_falls_back_to_the_hub_folder_of_hf_home(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", "")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    assert weights.hf_cache_dir() == tmp_path / "hf-home" / "hub"


def test_without_either_variable_the_cache_is_under_the_home_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HF_HOME", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "me"))
    assert weights.hf_cache_dir() == tmp_path / "me" / ".cache" / "huggingface" / "hub"


def test_the_cache_is_found_where_hf_download_puts_it(tmp_path, monkeypatch):
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "me"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert weights.hf_cache_dir() == tmp_path / "xdg" / "huggingface" / "hub"
    monkeypatch.setenv("HF_HOME", "~/hf")  # a home folder and variables expanded, as huggingface_hub does
    assert weights.hf_cache_dir() == tmp_path / "me" / "hf" / "hub"
    monkeypatch.setenv("HUGGINGFACE_HUB_CACHE", "$HOME/legacy")  # the old name, below HF_HUB_CACHE
    assert weights.hf_cache_dir() == tmp_path / "me" / "legacy"
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "new"))
    assert weights.hf_cache_dir() == tmp_path / "new"


def test_a_hub_id_resolves_to_its_snapshot_in_the_hf_cache(cache):
    folder = _snapshot(cache, "models--SomeOrg--some-model", "0123abcd")
    _snapshot(cache, "models--SomeOrg--other-model", "ffff0000")  # another repo of the same org
    assert weights.resolve("SomeOrg/some-model") == folder
    assert weights.missing_weights("SomeOrg/some-model") == []


def test_the_snapshot_whose_config_is_newest_wins_and_one_without_a_config_is_skipped(cache):
    # names sort in another order than their configs' times; the newest folder of all holds no config.json
    _snapshot(cache, "models--Org--m", "c-oldest", mtime=1_000_000)
    _snapshot(cache, "models--Org--m", "b-middle", mtime=2_000_000)
    newest = _snapshot(cache, "models--Org--m", "a-newest", mtime=3_000_000)
    _snapshot(cache, "models--Org--m", "d-half-downloaded", config=False)
    assert weights.resolve("Org/m") == newest


def test_a_hub_id_missing_from_the_cache_resolves_to_nothing(cache):
    assert weights.resolve("Org/absent") is None
    (cache / "models--Org--empty" / "snapshots").mkdir(parents=True)
    assert weights.resolve("Org/empty") is None
    _snapshot(cache, "models--Org--partial", "abc", config=False)
    assert weights.resolve("Org/partial") is None


@pytest.mark.parametrize("model", ["gpt2", "./org/name", "/org/name", "~/org/name"])
def test_only_an_org_slash_name_is_looked_up_in_the_cache(cache, tmp_path, monkeypatch, model):
    # the cache holds a folder that would match if the name were taken for a hub id: a path never is one
    monkeypatch.setenv("HOME", str(tmp_path / "me"))
    _snapshot(cache, f"models--{model.replace('/', '--')}", "abc")
    assert weights.resolve(model) is None


def test_a_local_folder_resolves_to_itself_with_home_and_run_expanded(tmp_path, monkeypatch, cache):
    monkeypatch.setenv("HOME", str(tmp_path / "me"))
    (tmp_path / "me" / "models" / "af3").mkdir(parents=True)
    assert weights.resolve("~/models/af3") == tmp_path / "me" / "models" / "af3"
    (tmp_path / "run" / "train" / "final").mkdir(parents=True)
    monkeypatch.setenv(weights.RUN_DIR_ENV, str(tmp_path / "run"))
    assert weights.resolve("{run}/train/final") == tmp_path / "run" / "train" / "final"
    # a folder named like a hub id, next to the working directory, wins over the cache
    _snapshot(cache, "models--Org--m", "abc")
    (Path.cwd() / "Org" / "m").mkdir(parents=True)
    assert weights.resolve("Org/m") == Path("Org/m")


def test_expand_puts_the_run_folder_in_every_run_placeholder(monkeypatch):
    monkeypatch.setenv(weights.RUN_DIR_ENV, "/runs/r1")
    assert weights.expand("{run}/train/final") == "/runs/r1/train/final"
    assert weights.expand("{run}/a:{run}/b") == "/runs/r1/a:/runs/r1/b"
    assert weights.expand("models/af3") == "models/af3"


def test_expand_outside_a_run_leaves_plain_values_and_refuses_run_paths(monkeypatch):
    monkeypatch.delenv(weights.RUN_DIR_ENV, raising=False)
    assert weights.expand("models/{name}") == "models/{name}"
    with pytest.raises(ValueError) as err:
        weights.expand("{run}/train/final")
    assert str(err.value) == "'{run}/train/final' refers to {run}, which only exists inside `afcot recipe run`"


@pytest.mark.parametrize(("model", "hub"), [
    ("SomeOrg/some-model", True), ("org/model-v1.5_x", True), ("0rg/m", True),
    ("gpt2", False), ("org/..", False), ("a..b/c", False), ("org/na..me", False), ("./org/name", False),
    ("/org/name", False), ("-org/name", False), ("org/name/extra", False), ("org/", False), ("org/na me", False),
])
def test_a_hub_id_is_org_slash_name_without_dot_dot(model, hub):
    assert weights.is_hub_id(model) is hub


def test_a_hub_id_not_on_this_machine_gets_the_hf_download_hint(cache):
    [problem] = weights.missing_weights("SomeOrg/some-model")
    assert problem == (
        "model: weights for 'SomeOrg/some-model' are not on this machine (looked for a folder 'SomeOrg/some-model'"
        f" and in the Hugging Face cache {cache}). Download them where there is network with "
        "`hf download SomeOrg/some-model` and copy the cache here (or set HF_HUB_CACHE), "
        "or set model = \"/path/to/some-model\" in this table")
    [problem] = weights.missing_weights("nvidia/audio-flamingo-3-hf", "teacher.model")
    assert problem.startswith("teacher.model: weights for 'nvidia/audio-flamingo-3-hf' are not on this machine")
    assert "`hf download nvidia/audio-flamingo-3-hf`" in problem
    assert problem.endswith("or set teacher.model = \"/path/to/audio-flamingo-3-hf\" in this table")


def test_a_path_not_on_this_machine_asks_for_the_folder_holding_config_json(cache):
    for model in ("./checkpoints/final", "/nowhere/af3", "gpt2", "../af3"):
        assert weights.missing_weights(model, "student") == [
            f"student: no model folder '{model}' on this machine; give the folder that holds its config.json"]
    # 'models/af3' reads as a hub id, unless there is a models/ folder here: then it is that folder's af3
    assert "hf download models/af3" in weights.missing_weights("models/af3")[0]
    Path("models").mkdir()
    assert weights.missing_weights("models/af3") == [
        "model: no model folder 'models/af3' on this machine; give the folder that holds its config.json"]


def test_a_run_path_is_checked_only_when_the_planned_run_leaves_its_stage_out(tmp_path):
    run = tmp_path / "run"
    model = "{run}/train/checkpoints/final"
    assert weights.missing_weights(model, "student") == []  # outside a plan nothing is known about the run
    known = ("generate", "train", "evaluate")
    with weights.planning(run, ["generate", "evaluate"], known):
        assert weights.missing_weights(model, "student") == [
            f"student: '{model}' is made by the train stage, which this run leaves out, and "
            f"{run}/train/checkpoints/final does not exist: run that stage first (or add it to --stages), "
            "or point student at one that exists"]
        assert weights.missing_run_output("{run}/export/x", "student") == []  # not a stage of this recipe
        (run / "train" / "checkpoints" / "final").mkdir(parents=True)
        assert weights.missing_weights(model, "student") == []  # an earlier run made it
    with weights.planning(tmp_path / "other", ["train"], known):
        assert weights.missing_weights(model, "student") == []  # this run makes it
        with weights.planning(tmp_path / "other", ["generate"], known):
            assert len(weights.missing_weights(model, "student")) == 1
        assert weights.missing_weights(model, "student") == []  # the outer plan is back
    assert weights.missing_run_output(model, "student") == []


def test_missing_packages_names_each_absent_module_with_its_hint():
    assert weights.missing_packages({"json": "it is the standard library"}) == []
    assert weights.missing_packages({"json": "-", "afcot_no_such_module": "pip install afcot-no-such"}) == [
        "Python package 'afcot_no_such_module' is not installed: pip install afcot-no-such"]


# --- audio files ------------------------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def fresh_audio_cache(monkeypatch):
    """Each test decodes into an empty cache of its own."""
    monkeypatch.setattr(audio, "_CACHE", OrderedDict())


def _tone(n: int = 8000, sr: int = 16000, freq: float = 440.0) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * freq * np.arange(n) / sr)).astype(np.float32)


@pytest.mark.parametrize(("name", "fmt", "expected"), [
    ("clip.wav", "WAV", "wav"), ("clip.WAV", "WAV", "wav"), ("clip.Flac", "FLAC", "flac"),
    ("clip", "WAV", "wav"),  # no suffix: soundfile reads the header; the format says wav
])
def test_a_readable_file_s_reference_carries_its_format_rate_and_duration(tmp_path, name, fmt, expected):
    path = tmp_path / name
    sf.write(path, _tone(8000), 16000, format=fmt, subtype="PCM_16")
    ref = audio.audio_ref_from_path(path)
    assert ref == AudioRef(path=str(path), format=expected, sample_rate=16000, duration=0.5)
    assert audio.audio_ref_from_path(str(path)) == ref


@pytest.mark.parametrize(("name", "expected"), [
    ("broken.FLAC", "flac"), ("gone.MP3", "mp3"), ("song.XM", "xm"), ("noise", ""), ("notes.txt", "txt"),
])
def test_an_unreadable_file_s_reference_keeps_its_path_and_suffix_but_no_metadata(tmp_path, name, expected):
    path = tmp_path / name
    if not name.startswith("gone"):
        path.write_bytes(b"this is no audio at all" * 10)
    ref = audio.audio_ref_from_path(path)
    assert ref == AudioRef(path=str(path), format=expected, sample_rate=0, duration=0.0)


def test_a_wave_becomes_in_memory_flac_with_its_hash_rate_and_duration():
    wave = _tone(4000, 8000).astype(np.float64)  # any float dtype is accepted
    ref = audio.audio_ref_from_wave(wave, 8000)
    assert ref.path is None and ref.format == "flac"
    assert ref.sample_rate == 8000 and ref.duration == 0.5
    assert ref.sha256 == hashlib.sha256(ref.data).hexdigest()
    info = sf.info(io.BytesIO(ref.data))
    assert (info.format, info.subtype, info.samplerate, info.frames) == ("FLAC", "PCM_16", 8000, 4000)
    decoded, sr = sf.read(io.BytesIO(ref.data), dtype="float32")
    assert sr == 8000 and np.allclose(decoded, wave, atol=1 / 16000)
    assert audio.encode_flac(wave, 8000) == ref.data  # the same wave encodes to the same bytes


def test_a_stereo_file_decodes_to_a_mono_float32_wave_and_its_rate(tmp_path):
    left, right = _tone(800, 8000, 200), _tone(800, 8000, 300)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, right], axis=1), 8000, subtype="FLOAT")
    wave, sr = audio.load(AudioRef(path=str(path), format="wav"))
    assert wave.dtype == np.float32 and wave.shape == (800,)
    assert type(sr) is int and sr == 8000
    assert np.allclose(wave, (left + right) / 2, atol=1e-6)


def test_in_memory_audio_decodes_like_a_file(tmp_path):
    ref = audio.audio_ref_from_wave(_tone(1600, 16000), 16000)
    wave, sr = audio.load(ref)
    assert wave.dtype == np.float32 and wave.shape == (1600,) and sr == 16000
    assert np.allclose(wave, _tone(1600, 16000), atol=1e-4)
    one = tmp_path / "one.wav"
    sf.write(one, np.array([0.25], dtype=np.float32), 8000, subtype="FLOAT")  # a single sample is still audio
    wave, sr = audio.load(AudioRef(path=str(one), format="wav"))
    assert wave.tolist() == [0.25] and sr == 8000


def test_audio_that_cannot_be_used_is_an_audio_error_saying_why(tmp_path):
    def error(ref: AudioRef) -> str:
        with pytest.raises(audio.AudioError) as err:
            audio.load(ref)
        assert err.value.__cause__ is None
        return str(err.value)

    assert error(AudioRef(format="wav")) == "audio reference has neither a path nor data"
    gone = tmp_path / "gone.wav"
    assert error(AudioRef(path=str(gone), format="wav")) == f"no such audio file: {gone}"
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF not really")
    assert error(AudioRef(path=str(broken), format="wav")).startswith(f"cannot decode {broken}: ")
    assert error(AudioRef(data=b"not flac", format="flac")).startswith("cannot decode in-memory audio: ")
    # bytes that do not decode are a decoding error, even when the path beside them is missing
    assert error(AudioRef(path=str(gone), data=b"not flac", format="flac")).startswith(f"cannot decode {gone}: ")
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros(0, dtype=np.float32), 8000)
    assert error(AudioRef(path=str(empty), format="wav")) == f"{empty} is empty (0 samples)"
    nan = tmp_path / "nan.wav"
    sf.write(nan, np.array([0.1, np.nan, 0.2], dtype=np.float32), 8000, subtype="FLOAT")
    assert error(AudioRef(path=str(nan), format="wav")) == f"{nan} contains non-finite samples"
    assert audio._CACHE == {}  # nothing unusable is cached


def test_a_decoded_file_is_served_from_the_cache_until_it_falls_out_least_recently_used_first(tmp_path,
                                                                                               monkeypatch):
    monkeypatch.setattr(audio, "_CACHE_SIZE", 2)
    refs = {}
    for name in "abc":
        path = tmp_path / f"{name}.wav"
        sf.write(path, _tone(400, 8000, 100 + 100 * "abc".index(name)), 8000, subtype="PCM_16")
        refs[name] = AudioRef(path=str(path), format="wav")
    first, _ = audio.load(refs["a"])
    assert audio.load(refs["a"])[0] is first  # the same decoded wave, not a second decode
    audio.load(refs["b"])
    audio.load(refs["a"])  # a is now the most recently used
    audio.load(refs["c"])  # so b falls out
    assert len(audio._CACHE) == 2
    assert audio.load(refs["a"])[0] is first
    kept = {key.split(":")[1] for key in audio._CACHE}
    assert kept == {os.path.abspath(refs["a"].path), os.path.abspath(refs["c"].path)}


def test_in_memory_audio_is_cached_by_its_content_hash():
    ref = audio.audio_ref_from_wave(_tone(400, 8000), 8000)
    unhashed = AudioRef(data=ref.data, format="flac")
    wave, _ = audio.load(unhashed)
    assert list(audio._CACHE) == [ref.sha256]
    assert audio.load(ref)[0] is wave  # the same content, known by its hash


def test_resampling_keeps_a_wave_at_its_own_rate_and_converts_to_another(tmp_path):
    wave = _tone(16000, 16000, 200)
    assert audio.resample(wave, 16000, 16000) is wave
    down = audio.resample(wave, 16000, 8000)
    assert down.shape == (8000,)
    assert np.allclose(down[100:-100], _tone(8000, 8000, 200)[100:-100], atol=2e-2)
    path = tmp_path / "clip.flac"
    sf.write(path, wave, 16000, subtype="PCM_16")
    at = audio.load_at(AudioRef(path=str(path), format="flac"), 8000)
    assert at.shape == (8000,) and np.allclose(at[100:-100], down[100:-100], atol=1e-3)
    assert np.array_equal(audio.load_at(AudioRef(path=str(path), format="flac"), 16000),
                          audio.load(AudioRef(path=str(path), format="flac"))[0])


def test_flac_bytes_are_passed_through_and_anything_else_is_re_encoded(tmp_path):
    ref = audio.audio_ref_from_wave(_tone(800, 8000), 8000)
    assert audio.flac_bytes(ref) is ref.data
    on_disk = tmp_path / "clip.flac"
    sf.write(on_disk, _tone(800, 8000, 300), 8000, subtype="PCM_24")
    assert audio.flac_bytes(AudioRef(path=str(on_disk), format="flac")) == on_disk.read_bytes()
    wav = tmp_path / "clip.wav"
    sf.write(wav, _tone(800, 8000, 500), 8000, subtype="PCM_16")
    wav_bytes = wav.read_bytes()
    for other in (AudioRef(path=str(wav), format="wav"), AudioRef(data=wav_bytes, format="wav")):
        data = audio.flac_bytes(other)
        assert data[:4] == b"fLaC"
        decoded, sr = sf.read(io.BytesIO(data), dtype="float32")
        assert sr == 8000 and np.allclose(decoded, _tone(800, 8000, 500), atol=1e-4)


# --- JSON files -------------------------------------------------------------------------------------------------


def test_read_json_returns_the_document(tmp_path):
    path = tmp_path / "doc.json"
    path.write_text(json.dumps({"label": "café", "n": [1, 2]}, ensure_ascii=False), encoding="utf-8")
    assert read_json(path) == {"label": "café", "n": [1, 2]}
    assert read_json(str(path)) == {"label": "café", "n": [1, 2]}


def test_a_json_file_that_cannot_be_read_is_bad_input_naming_the_file(tmp_path):
    def error(path: Path) -> str:
        with pytest.raises(BadInput) as err:
            read_json(path)
        assert err.value.__cause__ is None and err.value.__suppress_context__
        return str(err.value)

    assert error(tmp_path / "gone.json") == f"{tmp_path / 'gone.json'}: file not found"
    assert error(Path(str(tmp_path / "gone.json"))) == f"{tmp_path}/gone.json: file not found"
    bad = tmp_path / "bad.json"
    bad.write_text('{"a": 1,}')
    assert error(bad) == (f"{bad}: not a readable JSON file "
                          "(Expecting property name enclosed in double quotes: line 1 column 9 (char 8))")
    latin = tmp_path / "latin.json"
    latin.write_bytes(b'{"a": "caf\xe9"}')
    assert error(latin).startswith(f"{latin}: not a readable JSON file ('utf-8' codec can't decode byte 0xe9")
    assert error(tmp_path) == f"{tmp_path}: not a readable JSON file ([Errno 21] Is a directory: '{tmp_path}')"


def test_json_objects_accepts_a_list_of_objects_and_names_what_is_wrong_otherwise():
    records = [{"id": "a"}, {}]
    assert json_objects(records, "items.json") is records
    assert json_objects([], "items.json") == []

    def error(doc, *what: str) -> str:
        with pytest.raises(BadInput) as err:
            json_objects(doc, "items.json", *what)
        return str(err.value)

    assert error({"id": "a"}) == "items.json: expected a JSON list of records, got dict"
    assert error("text", "clips") == "items.json: expected a JSON list of clips, got str"
    assert error([{"id": "a"}, {"id": "b"}, ["c"]]) == "items.json: entry 2: expected an object, got list"
    assert error([None]) == "items.json: entry 0: expected an object, got NoneType"


# --- standard streams whose reader leaves -----------------------------------------------------------------------


class _Leaving:
    """A stream whose reader leaves after ``good`` writes: it records what it was given and how often flushed."""

    def __init__(self, good: int = 0, fileno=None) -> None:
        self.written: list[str] = []
        self.flushes = 0
        self.good = good
        self._fileno = fileno

    def write(self, text: str) -> int:
        if len(self.written) >= self.good:
            raise BrokenPipeError(32, "Broken pipe")
        self.written.append(text)
        return len(text)

    def flush(self) -> None:
        self.flushes += 1
        if len(self.written) >= self.good:
            raise BrokenPipeError(32, "Broken pipe")

    def fileno(self) -> int:
        return self._fileno()


def _points_at_devnull(fd: int) -> bool:
    here, null = os.fstat(fd), os.stat(os.devnull)
    return (here.st_dev, here.st_ino, here.st_rdev) == (null.st_dev, null.st_ino, null.st_rdev)


def test_a_healthy_stream_gets_every_write_and_flush_and_lends_its_attributes():
    inner = io.StringIO()
    stream = Forgiving(inner)
    assert stream.gone is False
    assert stream.write("abc") == 3 and stream.write("") == 0
    stream.flush()
    assert inner.getvalue() == "abc" and stream.getvalue() == "abc"  # other attributes are the stream's own
    assert stream.isatty() is False
    with pytest.raises(AttributeError):
        stream.no_such_attribute  # noqa: B018


@pytest.fixture
def readerless_pipe():
    """The write end of a pipe whose read end is closed, as a text file."""
    read, write = os.pipe()
    os.close(read)
    with os.fdopen(write, "w") as pipe:
        yield pipe


def test_a_write_to_a_pipe_whose_reader_left_is_dropped_and_the_fd_now_points_at_dev_null(readerless_pipe):
    stream = Forgiving(readerless_pipe)
    text = "a progress line\n" * 10_000  # more than the buffer holds: the write itself reaches the pipe
    assert stream.write(text) == len(text)
    assert stream.gone is True
    assert _points_at_devnull(readerless_pipe.fileno())
    assert stream.write("later\n") == len("later\n")
    stream.flush()
    readerless_pipe.write("even straight to the file\n")
    readerless_pipe.flush()  # the pipe's own buffer now drains into /dev/null


def test_a_flush_to_a_pipe_whose_reader_left_is_dropped_too(readerless_pipe):
    stream = Forgiving(readerless_pipe)
    assert stream.write("short\n") == 6  # still in the buffer
    stream.flush()
    assert stream.gone is True and _points_at_devnull(readerless_pipe.fileno())


def test_once_the_reader_left_later_writes_and_flushes_never_reach_the_stream():
    inner = _Leaving(good=1, fileno=lambda: -1)
    stream = Forgiving(inner)
    assert stream.write("delivered") == len("delivered")
    assert stream.write("lost") == 4
    assert stream.gone is True
    assert stream.write("later") == 5
    stream.flush()
    assert inner.written == ["delivered"] and inner.flushes == 0

    flushed_first = _Leaving(good=0, fileno=lambda: -1)
    stream = Forgiving(flushed_first)
    stream.flush()
    assert stream.gone is True
    stream.flush()
    assert stream.write("x") == 1
    assert flushed_first.flushes == 1


def _fileno_oserror() -> int:
    raise OSError(9, "Bad file descriptor")


def _fileno_closed() -> int:
    raise ValueError("I/O operation on closed file")


@pytest.mark.parametrize("fileno", [_fileno_oserror, _fileno_closed, lambda: -1],
                         ids=["fileno-oserror", "closed-file", "invalid-fd"])
def test_a_stream_without_a_usable_file_descriptor_is_dropped_quietly(fileno):
    before = len(os.listdir("/proc/self/fd"))
    stream = Forgiving(_Leaving(fileno=fileno))
    assert stream.write("text") == 4
    assert stream.gone is True
    assert len(os.listdir("/proc/self/fd")) == before  # nothing opened for it is left open


def test_a_capture_without_fileno_is_dropped_quietly():
    stream = Forgiving(GonePipe())
    assert stream.write("text") == 4
    stream.flush()
    assert stream.gone is True


def test_inside_forgiving_a_gone_stdout_and_stderr_do_not_stop_the_work(monkeypatch):
    out, err = _Leaving(good=1, fileno=lambda: -1), _Leaving(good=0, fileno=lambda: -1)
    monkeypatch.setattr("sys.stdout", out)
    monkeypatch.setattr("sys.stderr", err)
    import sys

    with forgiving():
        assert isinstance(sys.stdout, Forgiving) and isinstance(sys.stderr, Forgiving)
        print("first line")  # delivered: "first line", then "\n" breaks
        print("a progress line", file=sys.stderr)
        print("the rest")
        done = True
    assert done and sys.stdout is out and sys.stderr is err
    assert out.written == ["first line"] and err.written == []


def test_forgiving_flushes_both_streams_on_the_way_out(monkeypatch):
    import sys

    out, err = _Leaving(good=10), _Leaving(good=10)
    monkeypatch.setattr("sys.stdout", out)
    monkeypatch.setattr("sys.stderr", err)
    with forgiving():
        print("hello")
    assert (out.flushes, err.flushes) == (1, 1) and out.written == ["hello", "\n"]
    assert sys.stdout is out


# --- fingerprints, errors, the sampler protocol -----------------------------------------------------------------


def test_a_digest_is_the_sha256_of_canonical_json_with_other_values_as_text():
    value = {"b": 1, "a": [1, "x"], "path": Path("/data/clips")}
    canonical = '{"a": [1, "x"], "b": 1, "path": "/data/clips"}'
    assert digest(value) == hashlib.sha256(canonical.encode()).hexdigest()
    assert digest({"a": [1, "x"], "path": "/data/clips", "b": 1}) == digest(value)  # key order does not matter
    assert digest([1, 2]) != digest([2, 1])


def test_errors_carry_their_meaning():
    rejected = Rejected("no audio in the clip")
    assert rejected.reason == "no audio in the clip" and str(rejected) == "no audio in the clip"
    for kind in (BadInput, Rejected, TransientError, TeacherError, RunIncomplete):
        assert issubclass(kind, AfcotError)
    expected = (TypeError, AttributeError, NameError, AssertionError, NotImplementedError, ImportError)
    assert expected == PROGRAMMING_ERRORS
    assert not issubclass(AfcotError, PROGRAMMING_ERRORS)


def test_make_rng_depends_only_on_the_seed_and_parts():
    draws = [make_rng(7, "clip-1", 3).random() for _ in range(2)]
    assert draws[0] == draws[1] == random.Random("7:clip-1:3").random()  # stable across processes: no hash()
    assert make_rng(7, "clip-1", 3).random() != make_rng(7, "clip-2", 3).random()
    assert make_rng(None).random() == random.Random("None").random()
    assert make_rng("7", "clip-1", "3").random() == draws[0]  # seeds and parts count by their text


class _Recording(NegativeSampler):
    name = "recording"

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def sample(self, answer, k=3, *, exclude=(), question="", seed=None, rng=None):
        self.calls.append((answer, k, exclude, question, seed, rng))
        return [f"not {answer}"] * k


class _Asking(AsyncNegativeSampler):
    name = "asking"

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    async def asample(self, answer, k=3, *, exclude=(), question="", seed=None, rng=None):
        await asyncio.sleep(0)
        self.calls.append((answer, k, exclude, question, seed, rng))
        return [f"not {answer}"] * k


def test_a_computing_sampler_can_be_awaited_with_every_argument_passed_on():
    sampler, rng = _Recording(), random.Random(1)
    assert asyncio.run(sampler.asample("Dog", 2, exclude=["Cat"], question="Which animal?", seed=5, rng=rng)) == [
        "not Dog", "not Dog"]
    assert asyncio.run(sampler.asample("Bird")) == ["not Bird"] * 3
    assert sampler.calls == [("Dog", 2, ["Cat"], "Which animal?", 5, rng), ("Bird", 3, (), "", None, None)]


def test_a_teacher_sampler_can_be_called_outside_an_event_loop_with_every_argument_passed_on():
    sampler, rng = _Asking(), random.Random(1)
    assert sampler.sample("Dog", 2, exclude=["Cat"], question="Which animal?", seed=5, rng=rng) == ["not Dog"] * 2
    assert sampler.sample("Bird") == ["not Bird"] * 3
    assert sampler.calls == [("Dog", 2, ["Cat"], "Which animal?", 5, rng), ("Bird", 3, (), "", None, None)]


def test_a_teacher_sampler_called_inside_an_event_loop_says_to_await_it():
    sampler = _Asking()

    async def inside() -> None:
        with pytest.raises(RuntimeError) as err:
            sampler.sample("Dog")
        assert str(err.value) == "_Asking asks a teacher: await asample() inside an event loop"
        assert await sampler.asample("Dog", 1) == ["not Dog"]

    asyncio.run(inside())
    assert sampler.calls == [("Dog", 1, (), "", None, None)]
