"""Log-mel features of the turn model, in numpy, frame-aligned to the audio's end.

Frames are 25 ms (400 samples at 16 kHz) every 10 ms; the last frame of a window ends exactly
at the window's last sample, so a window cut from a longer signal at a multiple of 10 ms gives
the same frames as the long signal's spectrogram (training computes one per clip and slices it).
"""

from __future__ import annotations

from functools import cache

import numpy as np

RATE = 16000
HOP = 160  # 10 ms
WIN = 400  # 25 ms
N_FFT = 512
N_MELS = 40
FMIN_HZ = 50.0
WINDOW_FRAMES = 150  # 1.5 s
FLOOR = -12.0  # natural-log units below the window's loudest bin (about 52 dB)


def window_samples(frames: int = WINDOW_FRAMES) -> int:
    """Samples that give `frames` frames ending at the last sample."""
    return (frames - 1) * HOP + WIN


@cache
def _mel_matrix() -> np.ndarray:
    """(N_FFT // 2 + 1, N_MELS) triangular filters, HTK mel scale."""

    def mel(f):
        return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)

    def hz(m):
        return 700.0 * (10.0 ** (np.asarray(m) / 2595.0) - 1.0)

    edges = hz(np.linspace(mel(FMIN_HZ), mel(RATE / 2), N_MELS + 2))
    bins = np.fft.rfftfreq(N_FFT, 1.0 / RATE)
    fb = np.zeros((len(bins), N_MELS), np.float32)
    for m in range(N_MELS):
        lo, mid, hi = edges[m], edges[m + 1], edges[m + 2]
        up = (bins - lo) / max(mid - lo, 1e-6)
        down = (hi - bins) / max(hi - mid, 1e-6)
        fb[:, m] = np.maximum(0.0, np.minimum(up, down))
    return fb


@cache
def _hann() -> np.ndarray:
    return np.hanning(WIN).astype(np.float32)


def log_mel(samples: np.ndarray) -> np.ndarray:
    """(frames, N_MELS) natural-log mel power of int16 (or float in [-1, 1]) audio at 16 kHz;
    frame i covers samples [len - WIN - (n-1-i) * HOP, ... + WIN). Empty if shorter than WIN."""
    x = np.asarray(samples)
    x = x.astype(np.float32) / 32768.0 if x.dtype == np.int16 else x.astype(np.float32)
    n = 0 if len(x) < WIN else 1 + (len(x) - WIN) // HOP
    if n == 0:
        return np.zeros((0, N_MELS), np.float32)
    start = len(x) - WIN - (n - 1) * HOP
    frames = np.lib.stride_tricks.sliding_window_view(x[start:], WIN)[::HOP]
    spec = np.abs(np.fft.rfft(frames * _hann(), N_FFT)) ** 2
    return np.log(spec @ _mel_matrix() + 1e-10).astype(np.float32)


def normalize(mel: np.ndarray, frames: int = WINDOW_FRAMES) -> np.ndarray:
    """The model's input: the last `frames` frames (padded at the front with the floor when
    there are fewer), relative to the window's loudest bin and clipped at FLOOR, so the level
    a caller speaks at does not matter."""
    mel = mel[-frames:]
    rel = mel - (mel.max() if mel.size else 0.0)
    rel = np.maximum(rel, FLOOR)
    if len(rel) < frames:
        rel = np.concatenate([np.full((frames - len(rel), N_MELS), FLOOR, np.float32), rel])
    return rel.astype(np.float32)


class StreamingLogMel:
    """`log_mel` of a stream fed in pieces: a frame ends at every multiple of HOP samples (from
    WIN on), the same frames `log_mel` gives for the whole stream when its length is a whole
    number of hops. Keeps the last `frames` frames (about 0.3 ms per second of audio)."""

    def __init__(self, frames: int = WINDOW_FRAMES) -> None:
        self._frames = np.zeros((0, N_MELS), np.float32)
        self._keep = frames
        self._pending = np.zeros(0, np.int16)  # samples not yet past the last frame end
        self._fed = 0  # samples fed so far

    def feed(self, samples: np.ndarray) -> None:
        samples = np.asarray(samples, np.int16)
        first_new_end = (self._fed // HOP + 1) * HOP  # the next frame end after what we had
        self._fed += len(samples)
        data = np.concatenate([self._pending, samples])
        # `data` ends at self._fed; frames end at multiples of HOP up to it, and from WIN on.
        last_end = self._fed // HOP * HOP
        lo = max(first_new_end, (WIN + HOP - 1) // HOP * HOP)
        if last_end >= lo:
            offset = self._fed - len(data)  # stream index of data[0]
            seg = data[lo - WIN - offset : last_end - offset]
            new = log_mel(seg)
            self._frames = np.concatenate([self._frames, new])[-self._keep :]
        self._pending = data[-(WIN - HOP + (self._fed - last_end)) :] if len(data) else data

    @property
    def window(self) -> np.ndarray:
        """The last frames (fewer at the start of the stream)."""
        return self._frames
