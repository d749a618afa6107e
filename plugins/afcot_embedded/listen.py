"""DSP measurements of a waveform: what the embedded ALM "hears".

Loudness and its trend, pitch height and direction, texture (tonal / noise-like / impulsive),
brightness, onsets with their count, tempo and regularity, decay, swelling, duration.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

HOP = 160  # 10 ms at 16 kHz
WIN = 1024


@dataclass(frozen=True)
class Measurements:
    duration: float
    loudness_db: float
    loudness_level: str
    loudness_trend: str
    trend_db: float
    texture: str
    pitch_hz: float | None
    pitch_height: str | None
    pitch_direction: str | None
    centroid_hz: float
    brightness: str
    event_count: int
    event_rate: float
    tempo: str | None
    regularity: str | None
    envelope: str
    modulation: str

    def value(self, prop: str) -> str | float | None:
        return getattr(self, prop)


def _frames(wave: np.ndarray, size: int, hop: int) -> np.ndarray:
    if len(wave) < size:
        wave = np.pad(wave, (0, size - len(wave)))
    count = 1 + (len(wave) - size) // hop
    idx = np.arange(size)[None, :] + hop * np.arange(count)[:, None]
    return wave[idx]


def _level(rms_db: float) -> str:
    return "loud" if rms_db > -21 else "quiet" if rms_db < -31 else "moderate"


def _onsets(env_db: np.ndarray, floor_db: float) -> np.ndarray:
    """Frames where the envelope peaks after rising by at least 9 dB within the previous 60 ms."""
    peaks = []
    last = -10
    for i in range(1, len(env_db) - 1):
        v = env_db[i]
        if v < floor_db or v < env_db[i - 1] or v < env_db[i + 1]:
            continue
        if v - env_db[max(0, i - 6) : i].min(initial=v) < 9 or i - last < 5:
            continue
        peaks.append(i)
        last = i
    return np.asarray(peaks, dtype=int)


def measure(wave: np.ndarray, sr: int) -> Measurements:
    """Measure ``wave`` (mono float) sampled at ``sr`` Hz."""
    wave = np.asarray(wave, dtype=np.float64)
    duration = len(wave) / sr
    hop = max(1, sr // 100)
    rms = np.sqrt(np.mean(_frames(wave, 2 * hop, hop) ** 2, axis=1)) + 1e-9
    env = 20 * np.log10(rms)
    top = float(env.max())
    active = env > top - 30
    loud_db = float(20 * np.log10(np.sqrt(np.mean(rms[active] ** 2))))
    onsets = _onsets(env, top - 30)
    idx = np.flatnonzero(active)
    idx[-1] - idx[0] + 1 if len(idx) else 1
    quiet_share = float(np.mean(env[idx[0] : idx[-1] + 1] < top - 15)) if len(idx) else 0.0
    impulsive = len(onsets) >= 3 and quiet_share > 0.3

    # spectrum over active frames
    spec_frames = _frames(wave, WIN, WIN // 4) * np.hanning(WIN)
    power = np.abs(np.fft.rfft(spec_frames, axis=1)) ** 2
    frame_db = 10 * np.log10(power.sum(axis=1) + 1e-12)
    loud_frames = frame_db > frame_db.max() - 20
    p = power[loud_frames]
    freqs = np.fft.rfftfreq(WIN, 1 / sr)
    mean_power = p.mean(axis=0)
    centroid = float((freqs * mean_power).sum() / (mean_power.sum() + 1e-12))
    top3 = np.sort(p, axis=1)[:, -3:].sum(axis=1) / (p.sum(axis=1) + 1e-12)
    peakiness = float(np.median(top3))
    texture = "impulsive" if impulsive else "tonal" if peakiness > 0.6 else "noise-like"

    pitch_hz = pitch_height = pitch_direction = None
    if texture == "tonal" or (impulsive and peakiness > 0.3):
        peak_bins = p.argmax(axis=1)
        track = freqs[np.clip(peak_bins, 1, len(freqs) - 1)]
        pitch_hz = float(np.median(track))
        pitch_height = "high" if pitch_hz > 1000 else "low" if pitch_hz < 300 else "medium"
        third = max(1, len(track) // 3)
        ratio = float(np.median(track[-third:]) / max(np.median(track[:third]), 1.0))
        pitch_direction = "rising" if ratio > 1.15 else "falling" if ratio < 0.87 else "steady"

    # loudness over time, on the active span
    body = env[idx[0] : idx[-1] + 1] if len(idx) else env
    quarter = max(1, len(body) // 4)
    trend_db = float(np.mean(body[-quarter:]) - np.mean(body[:quarter]))
    trend = "louder" if trend_db > 2.5 else "quieter" if trend_db < -2.5 else "same level"
    peak_at = int(np.argmax(body))
    decays = len(onsets) <= 2 and peak_at < 0.15 * len(body) and np.mean(body[-quarter:]) < body.max() - 15
    if decays:
        trend = "quieter"

    # swelling: the detrended envelope's spread and periodicity
    smooth = np.convolve(body, np.ones(12) / 12, mode="valid") if len(body) > 24 else body
    t = np.arange(len(smooth))
    detrended = smooth - np.polyval(np.polyfit(t, smooth, 1), t) if len(smooth) > 2 else smooth * 0
    modulation = "steady"
    if not impulsive and not decays and np.std(detrended) > 1.2:
        ac = np.correlate(detrended, detrended, "full")[len(detrended) - 1 :]
        ac = ac / (ac[0] + 1e-12)
        lags = ac[30 : min(len(ac), 150)]
        modulation = "regular swells" if len(lags) and lags.max() > 0.4 else "irregular swells"

    rate = len(onsets) / duration if duration else 0.0
    intervals = np.diff(onsets)
    regular = len(intervals) >= 2 and float(np.std(intervals) / max(np.mean(intervals), 1e-9)) < 0.2
    return Measurements(
        duration=round(duration, 2),
        loudness_db=round(loud_db, 1),
        loudness_level=_level(loud_db),
        loudness_trend=trend,
        trend_db=round(trend_db, 1),
        texture=texture,
        pitch_hz=round(pitch_hz, 1) if pitch_hz else None,
        pitch_height=pitch_height,
        pitch_direction=pitch_direction,
        centroid_hz=round(centroid, 1),
        brightness="bright" if centroid > 2500 else "dark" if centroid < 600 else "balanced",
        event_count=len(onsets) if impulsive else 1,
        event_rate=round(rate, 2) if impulsive else 0.0,
        tempo=("fast" if rate > 4 else "slow") if impulsive else None,
        regularity=("evenly spaced" if regular else "irregular") if impulsive else None,
        envelope="decays" if decays else "sustained",
        modulation=modulation,
    )
