"""The turn model's features: streaming equals offline, and the level does not matter."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from telugu_s2s.turn import features


def _noise(seconds: float, seed: int = 0, scale: float = 3000.0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(rng.standard_normal(int(features.RATE * seconds)) * scale, -32768, 32767).astype(np.int16)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 2000), min_size=1, max_size=60), st.integers(0, 1000))
def test_streaming_frames_equal_the_whole_signals_frames(chunks, seed):
    """Fed in any pieces, the window after a whole number of hops is the offline spectrogram's
    last frames (what training slices from a clip's spectrogram)."""
    x = _noise(3.0, seed)
    s = features.StreamingLogMel()
    fed = 0
    for n in chunks:
        s.feed(x[fed : fed + n])
        fed = min(len(x), fed + n)
        if fed % features.HOP == 0:
            ref = features.log_mel(x[:fed])[-features.WINDOW_FRAMES :]
            assert s.window.shape == ref.shape
            np.testing.assert_allclose(s.window, ref, atol=1e-4)


def test_a_window_holds_at_most_one_and_a_half_seconds():
    s = features.StreamingLogMel()
    s.feed(_noise(4.0))
    assert s.window.shape == (features.WINDOW_FRAMES, features.N_MELS)
    assert features.window_samples() == (features.WINDOW_FRAMES - 1) * features.HOP + features.WIN


def test_normalized_input_does_not_depend_on_the_callers_level():
    x = _noise(2.0, scale=8000.0)
    loud = features.normalize(features.log_mel(x))
    quiet = features.normalize(features.log_mel((x / 100).astype(np.int16)))
    # 40 dB quieter: the same relative spectrum (to rounding of the quiet int16 samples).
    assert np.abs(loud - quiet).mean() < 0.05
    assert loud.max() == 0.0 and loud.min() >= features.FLOOR


def test_a_short_stream_is_padded_at_the_front_with_the_floor():
    w = features.normalize(features.log_mel(_noise(0.3)))
    assert w.shape == (features.WINDOW_FRAMES, features.N_MELS)
    assert (w[:100] == features.FLOOR).all()
