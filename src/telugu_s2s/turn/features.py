"""Features of the turn model, in numpy, frame-aligned to the audio's end.

One frame every 10 ms, each describing the FRAME samples (40 ms at 16 kHz) that end at it:

- 40 log-mel bins of its last 25 ms (WIN samples): the spectrum, what was said;
- F0 (normalized autocorrelation over the whole 40 ms, 60-400 Hz) and its voicing strength:
  the tune. A finished turn falls and slows on its last word; a pause after a comma, a list
  item or "మరియు" holds the pitch up. The log-mel alone resolves that movement poorly.

The last frame of a window ends exactly at the window's last sample, so a window cut from a
longer signal at a multiple of 10 ms gives the same frames as the long signal's analysis
(training analyses each clip once and slices it; the gateway analyses as audio arrives).
"""

from __future__ import annotations

from functools import cache

import numpy as np

RATE = 16000
HOP = 160  # 10 ms
WIN = 400  # 25 ms: the log-mel window (the frame's end)
FRAME = 640  # 40 ms: the pitch window, the whole frame
N_FFT = 512
N_MELS = 40
N_FEATURES = N_MELS + 2  # + relative log-F0, voicing
FMIN_HZ = 50.0
F0_MIN_HZ, F0_MAX_HZ = 60.0, 400.0
VOICED_R = 0.45  # normalized autocorrelation peak above which a frame is voiced
WINDOW_FRAMES = 150  # 1.5 s
FLOOR = -12.0  # natural-log units below the window's loudest bin (about 52 dB)
# With `normalize(..., remove_shape=True)`: frames whose loudest bin is within this many nats
# (about 26 dB) of the window's loudest are speech, and their mean spectral shape is removed.
SPEECH_NATS = 6.0


def window_samples(frames: int = WINDOW_FRAMES) -> int:
    """Samples that give `frames` frames ending at the last sample."""
    return (frames - 1) * HOP + FRAME


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


def _pitch(frames: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """F0 in Hz (0 when unvoiced) and the autocorrelation peak of (n, FRAME) frames."""
    x = frames - frames.mean(axis=1, keepdims=True)
    spec = np.fft.rfft(x, 2 * FRAME)
    ac = np.fft.irfft(np.abs(spec) ** 2)[:, :FRAME]
    lo, hi = int(RATE / F0_MAX_HZ), int(RATE / F0_MIN_HZ)
    # Normalize by the energy of the overlapping parts (unbiased), against the frame's energy.
    overlap = (FRAME - np.arange(FRAME)) / FRAME
    r = ac[:, lo : hi + 1] / (ac[:, :1] * overlap[lo : hi + 1] + 1e-9)
    rows = np.arange(len(r))
    # The first lag near the highest peak, not the highest itself: multiples of the period
    # correlate as well, and would halve F0 (octave errors). Then climb to its own peak.
    best = np.argmax(r >= 0.9 * r.max(axis=1, keepdims=True), axis=1)
    for _ in range(8):
        step = (best + 1 < r.shape[1]) & (r[rows, np.minimum(best + 1, r.shape[1] - 1)] > r[rows, best])
        best = best + step
    peak = r[rows, best]
    f0 = np.where(peak >= VOICED_R, RATE / (best + lo), 0.0)
    return f0.astype(np.float32), np.clip(peak, 0.0, 1.0).astype(np.float32)


def analyze(samples: np.ndarray) -> np.ndarray:
    """(frames, N_FEATURES) raw features of int16 (or float in [-1, 1]) audio at 16 kHz: log-mel
    (natural log), F0 in Hz, voicing. Frame i ends at sample len - (n-1-i) * HOP; none when the
    audio is shorter than FRAME."""
    x = np.asarray(samples)
    x = x.astype(np.float32) / 32768.0 if x.dtype == np.int16 else x.astype(np.float32)
    n = 0 if len(x) < FRAME else 1 + (len(x) - FRAME) // HOP
    if n == 0:
        return np.zeros((0, N_FEATURES), np.float32)
    start = len(x) - FRAME - (n - 1) * HOP
    frames = np.lib.stride_tricks.sliding_window_view(x[start:], FRAME)[::HOP]
    spec = np.abs(np.fft.rfft(frames[:, FRAME - WIN :] * _hann(), N_FFT)) ** 2
    mel = np.log(spec @ _mel_matrix() + 1e-10)
    f0, voicing = _pitch(frames)
    return np.concatenate([mel, f0[:, None], voicing[:, None]], axis=1).astype(np.float32)


def normalize(raw: np.ndarray, frames: int = WINDOW_FRAMES, remove_shape: bool = False) -> np.ndarray:
    """The model's input from the last `frames` raw frames (padded at the front when fewer):
    log-mel relative to the window's loudest bin, clipped at FLOOR (the caller's level does not
    matter); log2 of F0 over the window's median voiced F0, clipped to +-1 octave, 0 where
    unvoiced (the caller's own pitch does not matter, its movement does); voicing as is.

    `remove_shape`: the speech frames' mean spectral shape (each bin's mean over the speech
    frames, less the mean over bins: the caller's timbre and line, not its level) is taken out
    of those frames, so that what is left is how the spectrum moves (weights trained so say so
    in their card: model.TurnModel.normalize)."""
    raw = raw[-frames:]
    mel, f0, voicing = raw[:, :N_MELS], raw[:, N_MELS], raw[:, N_MELS + 1]
    if remove_shape and mel.size:
        speech = mel.max(axis=1) >= mel.max() - SPEECH_NATS
        shape = mel[speech].mean(axis=0)
        mel = mel.copy()
        mel[speech] -= shape - shape.mean()
    rel = np.maximum(mel - (mel.max() if mel.size else 0.0), FLOOR)
    voiced = f0 > 0
    tune = np.zeros_like(f0)
    if voiced.any():
        tune[voiced] = np.clip(np.log2(f0[voiced] / np.median(f0[voiced])), -1.0, 1.0)
    out = np.concatenate([rel, tune[:, None], voicing[:, None]], axis=1)
    if len(out) < frames:
        pad = np.zeros((frames - len(out), N_FEATURES), np.float32)
        pad[:, :N_MELS] = FLOOR
        out = np.concatenate([pad, out])
    return out.astype(np.float32)


class StreamingFeatures:
    """`analyze` of a stream fed in pieces, computed when asked: a frame ends at every multiple
    of HOP samples (from FRAME on), the same frames `analyze` gives for the whole stream when
    its length is a whole number of hops. Feeding only keeps the last 1.5 s of audio; `window`
    analyses the frames it has not analysed yet (all of them the first time, then the ones
    since the last ask), so a call pays for the analysis only where its turns may end."""

    def __init__(self, frames: int = WINDOW_FRAMES) -> None:
        self._keep = frames
        self._audio = np.zeros(0, np.int16)  # the stream's last window_samples(frames) + HOP samples
        self._room = window_samples(frames) + HOP
        self._fed = 0  # samples fed so far
        self._frames = np.zeros((0, N_FEATURES), np.float32)
        self._last_end = 0  # stream index where the last analysed frame ends

    def feed(self, samples: np.ndarray) -> None:
        samples = np.asarray(samples, np.int16)
        self._fed += len(samples)
        self._audio = np.concatenate([self._audio[-max(0, self._room - len(samples)) :], samples])[-self._room :]

    @property
    def window(self) -> np.ndarray:
        """The last frames (fewer at the start of the stream)."""
        last_end = self._fed // HOP * HOP
        if last_end <= self._last_end or last_end < FRAME:
            return self._frames
        lo = max(self._last_end + HOP, (FRAME + HOP - 1) // HOP * HOP, last_end - (self._keep - 1) * HOP)
        offset = self._fed - len(self._audio)  # stream index of self._audio[0]
        new = analyze(self._audio[lo - FRAME - offset : last_end - offset])
        fresh = lo > self._last_end + HOP  # the frames kept so far are older than the window
        self._frames = (new if fresh else np.concatenate([self._frames, new]))[-self._keep :]
        self._last_end = last_end
        return self._frames
