"""Fundamental frequency (F0) of speech, frame by frame: YIN (de Cheveigné and Kawahara, 2002).

Used by the codec report to tell whether a codec keeps the pitch of a voice. numpy only.
"""

from __future__ import annotations

import numpy as np

FMIN_HZ = 60.0
FMAX_HZ = 400.0
FRAME_S = 0.04
HOP_S = 0.01


def frame_level_db(x: np.ndarray, sr: int, hop_s: float = HOP_S, frame_s: float = FRAME_S) -> np.ndarray:
    """Each analysis frame's RMS level in dB relative to the loudest frame (digital silence,
    below -100 dBFS, is -inf)."""
    w, hop = int(frame_s * sr), int(hop_s * sr)
    n = max(0, 1 + (len(x) - w) // hop)
    if n == 0:
        return np.zeros(0)
    idx = np.arange(w)[None, :] + hop * np.arange(n)[:, None]
    rms = np.sqrt(np.mean(x[idx].astype(np.float64) ** 2, axis=1))
    level = np.full(n, -np.inf)
    audible = rms > 1e-5
    if audible.any():
        level[audible] = 20 * np.log10(rms[audible] / rms.max())
    return level


def yin(
    x: np.ndarray,
    sr: int,
    fmin: float = FMIN_HZ,
    fmax: float = FMAX_HZ,
    threshold: float = 0.15,
    silence_db: float = -40.0,
) -> np.ndarray:
    """F0 in Hz of each 10 ms hop (40 ms window); 0 where the frame is unvoiced or silent."""
    x = np.asarray(x, np.float64)
    w, hop = int(FRAME_S * sr), int(HOP_S * sr)
    tau_min, tau_max = int(sr / fmax), int(sr / fmin) + 1
    span = w + tau_max
    n = max(0, 1 + (len(x) - span) // hop)
    if n == 0:
        return np.zeros(0)
    frames = x[np.arange(span)[None, :] + hop * np.arange(n)[:, None]]  # [n, span]
    size = 1 << int(np.ceil(np.log2(span + w)))
    a = np.fft.rfft(frames[:, :w], size)
    b = np.fft.rfft(frames, size)
    acf = np.fft.irfft(np.conj(a) * b, size)[:, : tau_max + 1]  # sum_j x[j] x[j + tau]
    sq = np.concatenate([np.zeros((n, 1)), np.cumsum(frames**2, axis=1)], axis=1)
    taus = np.arange(tau_max + 1)
    energy = sq[:, taus + w] - sq[:, taus]  # sum_j x[j + tau]^2
    d = sq[:, w : w + 1] + energy - 2 * acf  # the difference function
    cum = np.cumsum(d[:, 1:], axis=1)
    cmnd = np.ones_like(d)
    cmnd[:, 1:] = d[:, 1:] * taus[1:] / np.maximum(cum, 1e-12)
    level = frame_level_db(x, sr)[:n]
    f0 = np.zeros(n)
    for i in range(n):
        if level[i] < silence_db:
            continue
        row = cmnd[i]
        below = np.nonzero(row[tau_min : tau_max + 1] < threshold)[0]
        if below.size == 0:
            continue
        t = tau_min + int(below[0])
        while t + 1 <= tau_max and row[t + 1] < row[t]:  # walk down to the dip's bottom
            t += 1
        if 0 < t < tau_max:  # parabolic refinement
            y0, y1, y2 = row[t - 1], row[t], row[t + 1]
            den = y0 - 2 * y1 + y2
            shift = 0.5 * (y0 - y2) / den if abs(den) > 1e-12 else 0.0
        else:
            shift = 0.0
        f0[i] = sr / (t + shift)
    return f0


def frame_f0(x: np.ndarray, sr: int, hop: int, frames: int) -> np.ndarray:
    """`yin` read at the centre of each of `frames` codec frames of `hop` samples: F0 in Hz,
    0 where unvoiced (float32 [frames])."""
    f0 = yin(x, sr)
    out = np.zeros(frames, np.float32)
    if f0.size:
        centre = hop * np.arange(frames) + hop / 2  # in samples; a tracker frame's centre is at
        idx = np.round((centre - FRAME_S * sr / 2) / (HOP_S * sr)).astype(int)  # hop*i + window/2
        out[:] = f0[np.clip(idx, 0, f0.size - 1)]
    return out


def median_f0(f0: np.ndarray) -> float:
    """Median F0 over voiced frames (nan when none is voiced)."""
    voiced = f0[f0 > 0]
    return float(np.median(voiced)) if voiced.size else float("nan")


def voicing_agreement(ref: np.ndarray, out: np.ndarray, ref_level_db: np.ndarray, floor_db: float = -40.0) -> float:
    """Share of the reference's audible frames whose voiced/unvoiced decision the output keeps."""
    n = min(len(ref), len(out), len(ref_level_db))
    audible = ref_level_db[:n] >= floor_db
    if not audible.any():
        return float("nan")
    return float(np.mean((ref[:n] > 0)[audible] == (out[:n] > 0)[audible]))
