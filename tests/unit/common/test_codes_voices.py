import numpy as np
import pytest

from telugu_s2s.common import codes, voices


def test_codes_round_trip_is_codebook_major():
    arr = np.array([[1, 2, 3], [4, 5, 6]])
    msg = codes.to_proto(arr)
    assert list(msg.values) == [1, 2, 3, 4, 5, 6]
    assert np.array_equal(codes.from_proto(msg), arr)


def test_codes_shape_mismatch_and_range_are_rejected():
    msg = codes.to_proto(np.array([[1, 2], [3, 4]]))
    msg.n_frames = 3
    with pytest.raises(codes.CodesError, match="carry 4 values"):
        codes.from_proto(msg)
    with pytest.raises(codes.CodesError, match="out of range"):
        codes.from_proto(codes.to_proto(np.array([[1024]])), codebook_size=1024)


def test_voices():
    assert voices.VOICE_IDS == ("arjun", "ravi", "priya", "lakshmi")
    assert voices.get_voice("Priya").speaker_index == 2
    with pytest.raises(voices.UnknownVoiceError, match="arjun, ravi, priya, lakshmi"):
        voices.get_voice("sita")
