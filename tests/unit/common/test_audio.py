import numpy as np
import pytest

from telugu_s2s.common import audio as A


@pytest.mark.parametrize("enc", [A.Encoding.MULAW, A.Encoding.ALAW])
def test_g711_round_trip_error_is_within_the_codec_step(enc):
    fmt = A.AudioFormat(enc, 8000)
    x = np.arange(-32768, 32768, 3, dtype=np.int32).astype(np.int16)
    y = A.decode_bytes(A.encode_samples(x, fmt), fmt).astype(np.int32)
    err = np.abs(y - x.astype(np.int32))
    # G.711 is logarithmic: the error is bounded relative to the magnitude (step <= 1/16 of it)
    # plus a small absolute floor near zero.
    assert np.all(err <= np.maximum(np.abs(x.astype(np.int32)) / 15, 40)), err.max()


def test_mulaw_known_values():
    fmt = A.AudioFormat(A.Encoding.MULAW, 8000)
    # Reference points of ITU-T G.711 mu-law: 0xFF/0x7F are zero, 0x00 is the negative peak.
    assert A.decode_bytes(bytes([0xFF, 0x7F, 0x00, 0x80]), fmt).tolist() == [0, 0, -32124, 32124]


def test_alaw_known_values():
    fmt = A.AudioFormat(A.Encoding.ALAW, 8000)
    assert A.decode_bytes(bytes([0xD5, 0x55, 0xAA, 0x2A]), fmt).tolist() == [8, -8, 32256, -32256]


@pytest.mark.parametrize("enc", [A.Encoding.MULAW, A.Encoding.ALAW])
def test_g711_every_code_re_encodes_to_an_equivalent_code(enc):
    fmt = A.AudioFormat(enc, 8000)
    decoded = A.decode_bytes(bytes(range(256)), fmt)
    again = A.decode_bytes(A.encode_samples(decoded, fmt), fmt)
    assert np.array_equal(decoded, again)


def test_pcm16_odd_byte_count_is_rejected():
    with pytest.raises(A.AudioFormatError, match="even byte count"):
        A.decode_bytes(b"\x00\x01\x02", A.AudioFormat(A.Encoding.PCM16, 16000))


@pytest.mark.parametrize(
    "fmt,ok",
    [
        (A.AudioFormat(A.Encoding.PCM16, 16000), True),
        (A.AudioFormat(A.Encoding.PCM16, 48000), True),
        (A.AudioFormat(A.Encoding.PCM16, 44100), False),
        (A.AudioFormat(A.Encoding.MULAW, 8000), True),
        (A.AudioFormat(A.Encoding.ALAW, 16000), False),
    ],
)
def test_format_validation(fmt, ok):
    if ok:
        fmt.validate()
    else:
        with pytest.raises(A.AudioFormatError):
            fmt.validate()


def test_stream_resampler_matches_length_and_keeps_a_tone():
    rate_in, rate_out = 48000, 16000
    t = np.arange(rate_in) / rate_in
    tone = (0.5 * np.sin(2 * np.pi * 440 * t) * 32767).astype(np.int16)
    rs = A.StreamResampler(rate_in, rate_out)
    parts = [rs.process(tone[i : i + 960]) for i in range(0, len(tone), 960)]
    parts.append(rs.process(np.zeros(0, np.int16), last=True))
    out = np.concatenate(parts)
    assert abs(len(out) - rate_out) <= 2
    spectrum = np.abs(np.fft.rfft(out.astype(np.float64)))
    peak_hz = np.argmax(spectrum) * rate_out / len(out)
    assert abs(peak_hz - 440) < 3
