"""The shared audio decode cache: safe under worker threads, and a file changed on disk is decoded again."""

import os
import random
import threading
import time
from collections import OrderedDict

import numpy as np
import soundfile as sf

from afcot_core import audio
from afcot_core.records import AudioRef


def _tone(freq: float, n: int = 800, sr: int = 8000) -> np.ndarray:
    return (0.5 * np.sin(2 * np.pi * freq * np.arange(n) / sr)).astype(np.float32)


class _Yielding(OrderedDict):
    """The cache's own dict type, handing the GIL to another thread inside each access: any access made
    outside the cache's lock then races for real, not once in a million runs."""

    def move_to_end(self, key, last=True):
        time.sleep(0)
        super().move_to_end(key, last)

    def __getitem__(self, key):
        time.sleep(0)
        return super().__getitem__(key)

    def get(self, key, default=None):
        time.sleep(0)
        return super().get(key, default)


def test_four_threads_hammering_a_small_cache_never_fail(monkeypatch):
    monkeypatch.setattr(audio, "_CACHE_SIZE", 2)
    monkeypatch.setattr(audio, "_CACHE", _Yielding())
    refs = [audio.audio_ref_from_wave(_tone(100 + 40 * i), 8000) for i in range(6)]
    expected = [audio.load(ref)[0] for ref in refs]
    errors: list[BaseException] = []

    def hammer(seed: int) -> None:
        rng = random.Random(seed)
        try:
            for _ in range(400):
                i = rng.randrange(len(refs))
                wave, sr = audio.load(refs[i])
                assert sr == 8000 and np.array_equal(wave, expected[i])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=hammer, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, repr(errors[0])
    assert len(audio._CACHE) <= 2


def test_a_file_rewritten_in_place_is_decoded_again(tmp_path):
    path = tmp_path / "clip.wav"
    sf.write(path, _tone(220), 8000, subtype="PCM_16")
    first, _ = audio.load(AudioRef(path=str(path), format="wav"))
    stat = path.stat()
    sf.write(path, _tone(880), 8000, subtype="PCM_16")  # same size, new content
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert path.stat().st_size == stat.st_size
    second, _ = audio.load(AudioRef(path=str(path), format="wav"))
    assert not np.allclose(first, second)
    assert np.allclose(second, _tone(880), atol=1e-3)


def test_a_missing_file_is_an_audio_error_not_a_cache_entry(tmp_path):
    ref = AudioRef(path=str(tmp_path / "gone.wav"), format="wav")
    try:
        audio.load(ref)
    except audio.AudioError as exc:
        assert "gone.wav" in str(exc)
    else:
        raise AssertionError("a missing file decoded")
