import wave

import numpy as np
import pytest

from telugu_s2s.client.wav import WavError, read_wav, read_wav_as, write_wav


def _write(path, data: np.ndarray, rate: int, channels: int, width: int) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(data.tobytes())


def test_stereo_44k1_is_mixed_down_and_resampled(tmp_path):
    rate = 44100
    t = np.arange(rate) / rate
    left = (0.4 * np.sin(2 * np.pi * 300 * t) * 32767).astype("<i2")
    stereo = np.stack([left, left], axis=1)
    _write(tmp_path / "s.wav", stereo, rate, 2, 2)
    out = read_wav_as(tmp_path / "s.wav", 16000)
    assert out.dtype == np.int16 and abs(len(out) - 16000) <= 2
    assert 0.3 * 32767 < np.abs(out).max() < 0.5 * 32767


def test_write_then_read(tmp_path):
    x = (np.random.default_rng(0).standard_normal(800) * 1000).astype(np.int16)
    write_wav(tmp_path / "x.wav", x, 8000)
    y, rate = read_wav(tmp_path / "x.wav")
    assert rate == 8000
    assert np.allclose(y * 32768, x, atol=1)


def test_not_a_wav(tmp_path):
    (tmp_path / "bad.wav").write_bytes(b"hello world, not audio")
    with pytest.raises(WavError):
        read_wav(tmp_path / "bad.wav")
