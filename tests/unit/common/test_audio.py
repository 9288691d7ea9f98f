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


@pytest.mark.parametrize("rate_in, rate_out", [(8000, 16000), (48000, 16000), (24000, 16000), (16000, 24000),
                                              (16000, 8000), (16000, 48000), (44100, 16000)])
def test_stream_resampler_holds_back_2_ms_whatever_the_chunking(rate_in, rate_out):
    """Output goes out as soon as its input came in, but for half the filter, 2 ms (soxr's stream
    held back up to 96 ms, which a telephone caller's VAD heard late); it stays aligned with the
    input, and `last` gives the rest."""
    x = np.zeros(rate_in // 2, np.int16)
    x[rate_in // 10] = 20000
    outs = {}
    for chunk in (rate_in // 50, 37, 1000):
        rs = A.StreamResampler(rate_in, rate_out)
        parts, fed = [], 0
        for i in range(0, len(x), chunk):
            parts.append(rs.process(x[i : i + chunk]))
            fed += len(x[i : i + chunk])
            held = -(-fed * rate_out // rate_in) - sum(len(p) for p in parts)
            assert 0 <= held <= rate_out * 2.1 / 1000
        parts.append(rs.process(np.zeros(0, np.int16), last=True))
        outs[chunk] = np.concatenate(parts)
        assert abs(len(outs[chunk]) - len(x) * rate_out / rate_in) <= 1
    first, *rest = outs.values()
    assert all(np.array_equal(first, o) for o in rest)
    assert abs(np.argmax(np.abs(first)) / rate_out - 0.1) * 1000 <= 0.1  # aligned


@pytest.mark.parametrize("rate_in, rate_out, passed_hz, stopped_hz", [(16000, 8000, 3000, 4500), (48000, 16000, 6000, 9000)])
def test_stream_resampler_keeps_the_pass_band_and_stops_aliases(rate_in, rate_out, passed_hz, stopped_hz):
    def level_db(f):
        t = np.arange(rate_in) / rate_in
        x = (0.5 * np.sin(2 * np.pi * f * t) * 32767).astype(np.int16)
        y = A.StreamResampler(rate_in, rate_out).process(x).astype(np.float64)[500:-500]
        return 20 * np.log10(np.sqrt(np.mean(y**2)) / (0.5 * 32767 / np.sqrt(2)) + 1e-12)

    assert abs(level_db(1000)) < 0.1 and abs(level_db(passed_hz)) < 0.5
    assert level_db(stopped_hz) < -60
