"""Read any common WAV (rate, mono/stereo, 8/16/24/32-bit PCM or float) and write PCM16 WAV."""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from telugu_s2s.common.audio import resample


class WavError(ValueError):
    pass


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    """Return (mono float32 samples in [-1, 1], sample rate)."""
    path = Path(path)
    try:
        with wave.open(str(path), "rb") as w:
            n_channels, width, rate, n = w.getnchannels(), w.getsampwidth(), w.getframerate(), w.getnframes()
            raw = w.readframes(n)
    except (wave.Error, EOFError) as exc:
        # The stdlib reader does not know IEEE float WAVs (format 3): fall back to a minimal parser.
        samples, rate, n_channels = _read_float_wav(path, exc)
    else:
        if width == 1:
            samples = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0
        elif width == 2:
            samples = np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0
        elif width == 3:
            b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
            v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
            v = np.where(v >= 1 << 23, v - (1 << 24), v)
            samples = v.astype(np.float32) / float(1 << 23)
        elif width == 4:
            samples = np.frombuffer(raw, "<i4").astype(np.float32) / float(1 << 31)
        else:
            raise WavError(f"{path}: unsupported sample width {width} bytes")
    if n_channels > 1:
        samples = samples.reshape(-1, n_channels).mean(axis=1)
    return np.ascontiguousarray(samples, dtype=np.float32), int(rate)


def _read_float_wav(path: Path, cause: Exception) -> tuple[np.ndarray, int, int]:
    data = path.read_bytes()
    if data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise WavError(f"{path}: not a WAV file") from cause
    pos, fmt, rate, channels, bits = 12, None, 0, 1, 0
    while pos + 8 <= len(data):
        cid, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
        body = data[pos + 8 : pos + 8 + size]
        if cid == b"fmt ":
            fmt = int.from_bytes(body[0:2], "little")
            channels = int.from_bytes(body[2:4], "little")
            rate = int.from_bytes(body[4:8], "little")
            bits = int.from_bytes(body[14:16], "little")
        elif cid == b"data" and fmt is not None:
            if fmt in (3, 0xFFFE) and bits in (32, 64):
                arr = np.frombuffer(body[: len(body) // (bits // 8) * (bits // 8)], "<f4" if bits == 32 else "<f8")
                return arr.astype(np.float32), rate, channels
            break
        pos += 8 + size + (size & 1)
    raise WavError(f"{path}: unsupported WAV encoding") from cause


def read_wav_as(path: Path, rate: int) -> np.ndarray:
    """Mono int16 samples at `rate`."""
    samples, src_rate = read_wav(path)
    out = resample(samples, src_rate, rate) if src_rate != rate else samples
    return (np.clip(out, -1.0, 1.0) * 32767.0).astype(np.int16)


def write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.asarray(samples, dtype="<i2").tobytes())
