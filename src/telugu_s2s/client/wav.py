"""Audio files in and out, through libsndfile (soundfile).

Reads what callers and tools write: WAV (8-32-bit PCM, float, WAVE_FORMAT_EXTENSIBLE, mu-law,
A-law), FLAC, OGG/Vorbis and the rest libsndfile knows, at any rate, mono or multichannel
(mixed down). Writes PCM16 WAV.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

from telugu_s2s.common.audio import resample


class WavError(ValueError):
    """A file that is missing or holds no audio libsndfile can read."""


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """Return (mono float32 samples in [-1, 1], sample rate)."""
    path = Path(path)
    try:
        samples, rate = sf.read(str(path), dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as exc:
        raise WavError(f"{path}: not a readable audio file ({exc})") from exc
    if samples.shape[0] == 0:
        raise WavError(f"{path}: holds no audio samples")
    return np.ascontiguousarray(samples.mean(axis=1), dtype=np.float32), int(rate)


def read_wav_as(path: Path, rate: int) -> np.ndarray:
    """Mono int16 samples at `rate`."""
    samples, src_rate = read_wav(path)
    out = resample(samples, src_rate, rate) if src_rate != rate else samples
    return (np.clip(out, -1.0, 1.0) * 32767.0).astype(np.int16)


def write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    """Mono int16 samples as a PCM16 WAV."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.asarray(samples, dtype=np.int16), int(rate), format="WAV", subtype="PCM_16")
