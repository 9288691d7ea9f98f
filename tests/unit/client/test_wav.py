import wave

import numpy as np
import pytest
import soundfile as sf

from telugu_s2s.client.wav import WavError, read_wav, read_wav_as, write_wav


def _write(path, data: np.ndarray, rate: int, channels: int, width: int) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(width)
        w.setframerate(rate)
        w.writeframes(data.tobytes())


def _tone(rate: int, seconds: float = 1.0, amp: float = 0.4) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (amp * np.sin(2 * np.pi * 300 * t)).astype(np.float32)


def test_stereo_44k1_is_mixed_down_and_resampled(tmp_path):
    rate = 44100
    left = (_tone(rate) * 32767).astype("<i2")
    stereo = np.stack([left, left], axis=1)
    _write(tmp_path / "s.wav", stereo, rate, 2, 2)
    out = read_wav_as(tmp_path / "s.wav", 16000)
    assert out.dtype == np.int16 and abs(len(out) - 16000) <= 2
    assert 0.3 * 32767 < np.abs(out).max() < 0.5 * 32767


@pytest.mark.parametrize("fmt,subtype,rate,tol", [
    ("WAVEX", "PCM_32", 16000, 1e-4),  # what sox writes by default: 32-bit integer EXTENSIBLE
    ("WAV", "FLOAT", 16000, 1e-6),
    ("WAV", "PCM_24", 48000, 1e-4),
    ("WAV", "PCM_U8", 8000, 1e-2),
    ("WAV", "ULAW", 8000, 0.05),  # telephony
    ("WAV", "ALAW", 8000, 0.05),
    ("FLAC", "PCM_16", 16000, 1e-3),
    ("OGG", "VORBIS", 16000, 0.1),
])
def test_every_common_encoding_reads_as_the_same_tone(tmp_path, fmt, subtype, rate, tol):
    x = _tone(rate)
    path = tmp_path / f"tone.{'flac' if fmt == 'FLAC' else 'ogg' if fmt == 'OGG' else 'wav'}"
    sf.write(str(path), x, rate, format=fmt, subtype=subtype)
    y, got_rate = read_wav(path)
    assert got_rate == rate and y.dtype == np.float32 and len(y) == len(x)
    if subtype == "VORBIS":  # lossy: compare the level, not the samples
        assert abs(np.sqrt(np.mean(y**2)) - np.sqrt(np.mean(x**2))) < tol
    else:
        assert np.max(np.abs(y - x)) < tol


def test_write_then_read(tmp_path):
    x = (np.random.default_rng(0).standard_normal(800) * 1000).astype(np.int16)
    write_wav(tmp_path / "x.wav", x, 8000)
    assert sf.info(str(tmp_path / "x.wav")).subtype == "PCM_16"
    y, rate = read_wav(tmp_path / "x.wav")
    assert rate == 8000
    assert np.allclose(y * 32768, x, atol=1)


def test_not_audio_missing_or_empty_is_a_clear_error(tmp_path):
    (tmp_path / "bad.wav").write_bytes(b"hello world, not audio")
    with pytest.raises(WavError, match="not a readable audio file"):
        read_wav(tmp_path / "bad.wav")
    with pytest.raises(WavError, match="not a readable audio file"):
        read_wav(tmp_path / "missing.wav")
    write_wav(tmp_path / "empty.wav", np.zeros(0, np.int16), 16000)
    with pytest.raises(WavError, match="no audio samples"):
        read_wav(tmp_path / "empty.wav")
