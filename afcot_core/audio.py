"""Decoding, checking and encoding audio (soundfile; no torch)."""

from __future__ import annotations

import hashlib
import io
import os
import threading
from collections import OrderedDict
from pathlib import Path

import numpy as np
import soundfile as sf

from afcot_core.records import AudioRef


class AudioError(ValueError):
    """Audio that cannot be used: unreadable, empty, silent of samples, or not finite."""


_CACHE: OrderedDict[str, tuple[np.ndarray, int]] = OrderedDict()  # decoded waves, least recently used first
_CACHE_SIZE = 256
_CACHE_LOCK = threading.Lock()  # worker threads decode at the same time


def encode_flac(wave: np.ndarray, sample_rate: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, np.asarray(wave, dtype=np.float32), sample_rate, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


def audio_ref_from_wave(wave: np.ndarray, sample_rate: int) -> AudioRef:
    """An in-memory FLAC reference to ``wave``."""
    data = encode_flac(wave, sample_rate)
    return AudioRef(
        data=data,
        format="flac",
        sample_rate=sample_rate,
        duration=len(wave) / sample_rate,
        sha256=hashlib.sha256(data).hexdigest(),
    )


def audio_ref_from_path(path: str | Path) -> AudioRef:
    """A reference to a file; metadata is filled in when the file can be read, else left empty."""
    p = Path(path)
    try:
        info = sf.info(str(p))
        return AudioRef(path=str(p), format=p.suffix.lstrip(".").lower() or "wav",
                        sample_rate=info.samplerate, duration=info.duration)
    except Exception:
        return AudioRef(path=str(p), format=p.suffix.lstrip(".").lower())


def _key(ref: AudioRef) -> str | None:
    """The cache key of ``ref``: its content hash, or its file's path, size and mtime; None when unreadable."""
    if ref.sha256:
        return ref.sha256
    if ref.data is not None:
        return hashlib.sha256(ref.data).hexdigest()
    if ref.path is None:
        return None
    try:
        stat = os.stat(ref.path)
    except OSError:
        return None
    return f"path:{os.path.abspath(ref.path)}:{stat.st_size}:{stat.st_mtime_ns}"


def load(ref: AudioRef) -> tuple[np.ndarray, int]:
    """Decode ``ref`` to a mono float32 wave and its sample rate; :class:`AudioError` says why not.

    Decoded waves are kept in a small cache shared by threads; a file changed on disk is decoded again.
    """
    key = _key(ref)
    if key is not None:
        with _CACHE_LOCK:
            cached = _CACHE.get(key)
            if cached is not None:
                _CACHE.move_to_end(key)
                return cached
    where = ref.path or "in-memory audio"
    try:
        if ref.data is not None:
            wave, sr = sf.read(io.BytesIO(ref.data), dtype="float32", always_2d=True)
        elif ref.path is not None:
            wave, sr = sf.read(ref.path, dtype="float32", always_2d=True)
        else:
            raise AudioError("audio reference has neither a path nor data")
    except AudioError:
        raise
    except Exception as exc:
        if ref.path is not None and ref.data is None and not os.path.isfile(ref.path):
            raise AudioError(f"no such audio file: {ref.path}") from None
        raise AudioError(f"cannot decode {where}: {exc}") from None
    mono = wave.mean(axis=1)
    if mono.size == 0:
        raise AudioError(f"{where} is empty (0 samples)")
    if not np.all(np.isfinite(mono)):
        raise AudioError(f"{where} contains non-finite samples")
    if key is not None:
        with _CACHE_LOCK:
            _CACHE[key] = (mono, int(sr))
            while len(_CACHE) > _CACHE_SIZE:
                _CACHE.popitem(last=False)
    return mono, int(sr)


def resample(wave: np.ndarray, sr: int, rate: int) -> np.ndarray:
    """``wave`` at ``rate`` Hz (soxr, high quality); unchanged when it already is."""
    if sr == rate:
        return wave
    import soxr

    return soxr.resample(wave, sr, rate)


def load_at(ref: AudioRef, rate: int) -> np.ndarray:
    """Decode ``ref`` to a mono float32 wave at ``rate`` Hz (what model processors expect)."""
    wave, sr = load(ref)
    return resample(wave, sr, rate)


def flac_bytes(ref: AudioRef) -> bytes:
    """The audio as FLAC bytes (re-encoded unless it already is FLAC in memory or on disk)."""
    if ref.data is not None and ref.format == "flac":
        return ref.data
    if ref.path is not None and ref.format == "flac":
        return Path(ref.path).read_bytes()
    wave, sr = load(ref)
    return encode_flac(wave, sr)
