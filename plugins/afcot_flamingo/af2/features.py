"""AF2 audio input: peak-normalised 16 kHz audio cut into 10-s windows (no overlap, at most 12), and log-mels."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import numpy as np

from afcot_flamingo.af2.config import ClapConfig


def release_wave(source: bytes | str | Path, rate: int = 16000) -> np.ndarray:
    """Audio as the released AF2 data path reads a file: channel 0 of a multi-channel file (the release's
    ``data.T[0]``, not a mix of the channels), at ``rate`` Hz, float32. The release resamples with librosa,
    this with soxr (afcot_core.audio.resample). :class:`AudioError` when it cannot be decoded."""
    import soundfile as sf

    from afcot_core.api import AudioError, resample

    data = io.BytesIO(source) if isinstance(source, bytes) else str(source)
    try:
        wave, sr = sf.read(data, dtype="float32", always_2d=True)
    except (OSError, RuntimeError, ValueError) as exc:
        raise AudioError(f"audio is unreadable ({exc})") from None
    return resample(np.ascontiguousarray(wave[:, 0]), sr, rate).astype(np.float32)


def training_wave(data: bytes | Path, where: str) -> np.ndarray:
    """:func:`release_wave` at 16 kHz, the AF2 student's wave reader; :class:`BadInput` names ``where``."""
    from afcot_core.api import AudioError, BadInput

    try:
        return release_wave(data, 16000)
    except AudioError as exc:
        raise BadInput(f"{where}: {exc}") from None


def windows(wave: np.ndarray, config: ClapConfig) -> np.ndarray:
    """``(n_windows, window_samples)`` float32 for one mono clip at ``config.sample_rate``.

    As the released inference does: the clip is scaled to peak 1 (an all-positive clip to [-1, 1]), cut after
    ``max_windows`` windows, zero-padded to a whole number of windows and truncated to 16-bit steps.
    """
    wave = np.asarray(wave, dtype=np.float64).reshape(-1)
    size = config.window_samples
    wave = wave[: size * config.max_windows]
    if wave.size == 0:
        wave = np.zeros(size)
    peak = float(np.abs(wave).max())
    if peak > 0:
        wave = 2 * wave / peak - 1.0 if wave.min() >= 0 else wave / peak
    n = max(1, math.ceil(wave.size / size))
    wave = np.pad(wave, (0, n * size - wave.size))
    wave = (np.clip(wave, -1.0, 1.0) * 32767.0).astype(np.int16).astype(np.float32) / 32767.0
    return wave.reshape(n, size)


def pad_windows(clips: list[np.ndarray]) -> tuple[Any, Any]:
    """A batch: ``audio (B, W, samples)`` zero-padded to the most windows, and ``audio_mask (B, W)``."""
    import torch

    most = max(c.shape[0] for c in clips)
    audio = torch.zeros(len(clips), most, clips[0].shape[1])
    mask = torch.zeros(len(clips), most, dtype=torch.bool)
    for i, clip in enumerate(clips):
        audio[i, : clip.shape[0]] = torch.from_numpy(clip)
        mask[i, : clip.shape[0]] = True
    return audio, mask


_MEL: dict[tuple[Any, ...], Any] = {}


def log_mel(audio: Any, config: ClapConfig) -> Any:
    """``(N, samples)`` → ``(N, frames, mel_bins)`` power mel in dB (torchaudio, HTK scale, no norm, float32)."""
    import torch
    import torchaudio

    key = (audio.device, config.sample_rate, config.n_fft, config.hop, config.mel_bins, config.fmin, config.fmax)
    if key not in _MEL:
        _MEL[key] = torchaudio.transforms.MelSpectrogram(
            sample_rate=config.sample_rate, n_fft=config.n_fft, win_length=config.n_fft, hop_length=config.hop,
            center=True, pad_mode="reflect", power=2.0, norm=None, n_mels=config.mel_bins,
            f_min=config.fmin, f_max=config.fmax).to(audio.device)
    with torch.autocast(audio.device.type, enabled=False):
        mel = _MEL[key](audio.float())
    return (10.0 * torch.log10(mel.clamp(min=1e-10))).transpose(1, 2)
