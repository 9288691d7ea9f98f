"""Audio formats: PCM16, G.711 mu-law / A-law (vectorized tables), resampling (streaming:
a short polyphase FIR; one-shot: soxr)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import Enum

import numpy as np

PCM16_RATES = (8000, 16000, 24000, 48000)
G711_RATE = 8000


class Encoding(str, Enum):
    PCM16 = "pcm16"
    MULAW = "mulaw"
    ALAW = "alaw"


class AudioFormatError(ValueError):
    pass


@dataclass(frozen=True)
class AudioFormat:
    encoding: Encoding
    sample_rate_hz: int

    @property
    def bytes_per_sample(self) -> int:
        return 2 if self.encoding is Encoding.PCM16 else 1

    def validate(self) -> AudioFormat:
        if self.encoding is Encoding.PCM16:
            if self.sample_rate_hz not in PCM16_RATES:
                raise AudioFormatError(
                    f"unsupported PCM16 sample rate {self.sample_rate_hz} Hz; "
                    f"use one of {', '.join(map(str, PCM16_RATES))}"
                )
        elif self.sample_rate_hz != G711_RATE:
            raise AudioFormatError(f"{self.encoding.name} audio must be 8000 Hz, got {self.sample_rate_hz} Hz")
        return self

    def duration_ms(self, n_bytes: int) -> float:
        return 1000.0 * (n_bytes // self.bytes_per_sample) / self.sample_rate_hz


# ------------------------------------------------------------------ G.711
# Decode tables map each of the 256 byte values to a linear sample; encoding is
# a single table lookup over the 14/13-bit magnitude (built once, vectorized).

_MULAW_BIAS = 0x84
_MULAW_CLIP = 32635


def _mulaw_decode_table() -> np.ndarray:
    u = ~np.arange(256, dtype=np.int32) & 0xFF
    sign = u & 0x80
    exponent = (u >> 4) & 0x07
    mantissa = u & 0x0F
    magnitude = (((mantissa << 3) + _MULAW_BIAS) << exponent) - _MULAW_BIAS
    return np.where(sign != 0, -magnitude, magnitude).astype(np.int16)


def _alaw_decode_table() -> np.ndarray:
    a = np.arange(256, dtype=np.int32) ^ 0x55
    sign = a & 0x80
    exponent = (a >> 4) & 0x07
    mantissa = a & 0x0F
    magnitude = np.where(
        exponent == 0,
        (mantissa << 4) + 8,
        ((mantissa << 4) + 0x108) << np.maximum(exponent - 1, 0),
    )
    return np.where(sign != 0, magnitude, -magnitude).astype(np.int16)


def _mulaw_encode_table() -> np.ndarray:
    # Index: 16-bit sample + 32768.
    x = np.arange(-32768, 32768, dtype=np.int32)
    sign = np.where(x < 0, 0x80, 0)
    mag = np.minimum(np.abs(x), _MULAW_CLIP) + _MULAW_BIAS
    exponent = np.floor(np.log2(mag)).astype(np.int32) - 7
    exponent = np.clip(exponent, 0, 7)
    mantissa = (mag >> (exponent + 3)) & 0x0F
    return (~(sign | (exponent << 4) | mantissa) & 0xFF).astype(np.uint8)


def _alaw_encode_table() -> np.ndarray:
    x = np.arange(-32768, 32768, dtype=np.int32)
    sign = np.where(x >= 0, 0x80, 0)
    mag = np.minimum(np.where(x >= 0, x, -x - 1), 32767) >> 3  # 13-bit magnitude
    exponent = np.where(mag < 32, 0, np.floor(np.log2(np.maximum(mag, 1))).astype(np.int32) - 4)
    exponent = np.clip(exponent, 0, 7)
    mantissa = np.where(exponent == 0, mag >> 1, mag >> exponent) & 0x0F
    return ((sign | (exponent << 4) | mantissa) ^ 0x55).astype(np.uint8)


MULAW_DECODE = _mulaw_decode_table()
ALAW_DECODE = _alaw_decode_table()
MULAW_ENCODE = _mulaw_encode_table()
ALAW_ENCODE = _alaw_encode_table()


def decode_bytes(data: bytes, fmt: AudioFormat) -> np.ndarray:
    """Bytes in `fmt` -> int16 samples. Raises AudioFormatError on an odd PCM16 length."""
    if fmt.encoding is Encoding.PCM16:
        if len(data) % 2:
            raise AudioFormatError(f"PCM16 audio must have an even byte count, got {len(data)} bytes")
        return np.frombuffer(data, dtype="<i2").astype(np.int16)
    table = MULAW_DECODE if fmt.encoding is Encoding.MULAW else ALAW_DECODE
    return table[np.frombuffer(data, dtype=np.uint8)]


def encode_samples(samples: np.ndarray, fmt: AudioFormat) -> bytes:
    """int16 samples -> bytes in `fmt`."""
    s = np.asarray(samples, dtype=np.int16)
    if fmt.encoding is Encoding.PCM16:
        return s.astype("<i2").tobytes()
    table = MULAW_ENCODE if fmt.encoding is Encoding.MULAW else ALAW_ENCODE
    return table[s.astype(np.int32) + 32768].tobytes()


def float_to_int16(x: np.ndarray) -> np.ndarray:
    return (np.clip(np.asarray(x, dtype=np.float32), -1.0, 1.0) * 32767.0).astype(np.int16)


def int16_to_float(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float32) / 32768.0


class StreamResampler:
    """Streaming int16 resampler with a short linear-phase filter: a polyphase FIR (Kaiser-
    windowed sinc) spanning about FILTER_MS. Its output is aligned with its input and holds back
    only half the filter, 2 ms: soxr's streaming resampler, used before, held back 96 ms from 8
    to 16 kHz (16.5 ms from 48 or 24 kHz), so a telephone caller's VAD heard every end of speech
    96 ms late. `last` flushes what is held, so a whole stream keeps its duration.

    Rates are whole numbers (in Hz); any ratio works. Chunking does not change the output."""

    FILTER_MS = 4.0
    KAISER_BETA = 8.0  # about 80 dB of stop band
    PASS = 0.9  # the cutoff, as a share of the lower rate's Nyquist frequency

    def __init__(self, in_rate: int, out_rate: int) -> None:
        self.in_rate = in_rate
        self.out_rate = out_rate
        if in_rate == out_rate:
            return
        g = math.gcd(in_rate, out_rate)
        self._up, self._down = up, down = out_rate // g, in_rate // g
        up_rate = in_rate * up  # the rate the filter runs at (zero-stuffed input)
        # An odd length whose half is a whole number of output samples: the lag can be cut exactly.
        half = max(1, round(up_rate * self.FILTER_MS / 2000.0 / down)) * down
        n = 2 * half + 1
        cutoff = self.PASS * min(in_rate, out_rate) / 2.0 / up_rate  # cycles per sample
        k = np.arange(n) - half
        h = 2.0 * cutoff * np.sinc(2.0 * cutoff * k) * np.kaiser(n, self.KAISER_BETA) * up
        taps = -(-n // up)  # input samples each output reads
        h = np.concatenate([h, np.zeros(taps * up - n)])
        # phase p reads x[i], x[i-1], ... with h[p], h[p + up], ...; stored oldest first for dot products
        self._phases = np.stack([h[p::up][::-1] for p in range(up)])
        self._taps = taps
        self._lag_out = half // down  # outputs the filter lags by: dropped at the start
        self._buf = np.zeros(taps - 1, dtype=np.float64)  # the last inputs, oldest first
        self._base = -(taps - 1)  # absolute index of _buf[0]
        self._in = 0  # input samples taken
        self._next_out = 0  # next output index of the (lagging) filter

    def process(self, samples: np.ndarray, last: bool = False) -> np.ndarray:
        s = np.asarray(samples, dtype=np.int16)
        if self.in_rate == self.out_rate:
            return s
        self._in += len(s)
        x = s.astype(np.float64)
        if last:  # push the held half of the filter out with silence
            x = np.concatenate([x, np.zeros(-(-self._lag_out * self._down // self._up) + 1)])
        buf = np.concatenate([self._buf, x])
        total_in = self._base + len(buf)  # inputs in the filter so far (with that silence)
        # Output j sits at up-sampled index j*down and reads inputs up to floor(j*down/up): every
        # j below total_in*up/down can be written now.
        j_end = -(-(total_in * self._up) // self._down)
        if last:  # exactly the stream's duration, no more
            j_end = min(j_end, -(-(self._in * self._up) // self._down) + self._lag_out)
        j = np.arange(self._next_out, max(self._next_out, j_end))
        newest = (j * self._down) // self._up
        phase = j * self._down - newest * self._up
        windows = np.lib.stride_tricks.sliding_window_view(buf, self._taps)
        out = np.einsum("ij,ij->i", windows[newest - self._taps + 1 - self._base], self._phases[phase])
        out = out[max(0, self._lag_out - self._next_out) :]  # the first outputs are the filter's lag
        self._next_out = max(self._next_out, j_end)
        keep = self._taps - 1
        self._base += len(buf) - keep
        self._buf = buf[len(buf) - keep :]
        return np.clip(np.rint(out), -32768, 32767).astype(np.int16)


def resample(samples: np.ndarray, in_rate: int, out_rate: int) -> np.ndarray:
    """One-shot resample of int16 or float samples."""
    if in_rate == out_rate:
        return np.asarray(samples)
    import soxr

    return soxr.resample(np.asarray(samples), in_rate, out_rate, quality="HQ")
