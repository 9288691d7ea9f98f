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
    s = features.StreamingFeatures()
    fed = 0
    for n in chunks:
        s.feed(x[fed : fed + n])
        fed = min(len(x), fed + n)
        if fed % features.HOP == 0:
            ref = features.analyze(x[:fed])[-features.WINDOW_FRAMES :]
            assert s.window.shape == ref.shape
            np.testing.assert_allclose(s.window, ref, atol=1e-4)


def test_a_window_holds_at_most_one_and_a_half_seconds():
    s = features.StreamingFeatures()
    s.feed(_noise(4.0))
    assert s.window.shape == (features.WINDOW_FRAMES, features.N_FEATURES)
    assert features.window_samples() == (features.WINDOW_FRAMES - 1) * features.HOP + features.FRAME


def test_normalized_input_does_not_depend_on_the_callers_level():
    x = _noise(2.0, scale=8000.0)
    loud = features.normalize(features.analyze(x))[:, : features.N_MELS]
    quiet = features.normalize(features.analyze((x / 100).astype(np.int16)))[:, : features.N_MELS]
    # 40 dB quieter: the same relative spectrum (to rounding of the quiet int16 samples).
    assert np.abs(loud - quiet).mean() < 0.05
    assert loud.max() == 0.0 and loud.min() >= features.FLOOR


def test_a_short_stream_is_padded_at_the_front_with_the_floor():
    w = features.normalize(features.analyze(_noise(0.3)))
    assert w.shape == (features.WINDOW_FRAMES, features.N_FEATURES)
    assert (w[:100, : features.N_MELS] == features.FLOOR).all() and (w[:100, features.N_MELS :] == 0).all()


def test_the_pitch_track_follows_a_falling_tone_and_its_tune_is_relative():
    """A 200 Hz tone falling to 150 Hz: F0 within 3 % each frame; the normalized tune is log2
    of F0 over the median, whatever the speaker's own pitch."""
    t = np.arange(features.RATE) / features.RATE
    f = 200.0 - 50.0 * t  # Hz, falling over 1 s
    x = (8000 * np.sin(2 * np.pi * np.cumsum(f) / features.RATE)).astype(np.int16)
    raw = features.analyze(x)
    f0 = raw[:, features.N_MELS]
    ends = (np.arange(len(raw)) * features.HOP + features.FRAME - features.FRAME // 2) / features.RATE
    expected = 200.0 - 50.0 * ends
    assert np.all(np.abs(f0 / expected - 1) < 0.03)
    tune = features.normalize(raw)[-len(raw) :, features.N_MELS]
    assert tune[0] > 0.15 and tune[-1] < -0.15  # starts above its median, ends below
    silent = features.analyze(np.zeros(features.RATE, np.int16))
    assert (silent[:, features.N_MELS] == 0).all()


def test_a_window_read_rarely_is_the_same_as_one_read_at_every_hop():
    """Feeding does no analysis; `window` analyses what it has not yet, or starts afresh when
    its kept frames fell out of the last 1.5 s."""
    x = _noise(6.0, seed=3)
    s = features.StreamingFeatures()
    fed = 0
    for upto in (16000, 16320, 16640, 64000, 64320, 96000):
        s.feed(x[fed:upto])
        fed = upto
        np.testing.assert_allclose(s.window, features.analyze(x[:upto])[-features.WINDOW_FRAMES :], atol=1e-4)


def test_removing_the_shape_leaves_how_the_spectrum_moves_whatever_the_callers_timbre():
    """The same spectral movement under two timbres (a per-bin offset on the speech frames) is
    one input with remove_shape, two without; silence stays at the floor."""
    rng = np.random.default_rng(5)
    moves = rng.uniform(-2.0, 0.0, (100, features.N_MELS))
    raw = np.zeros((features.WINDOW_FRAMES, features.N_FEATURES), np.float32)
    raw[:, : features.N_MELS] = -30.0  # silence before and after
    a, b = raw.copy(), raw.copy()
    tilt = np.linspace(0.0, 3.0, features.N_MELS)
    a[20:120, : features.N_MELS] = moves
    b[20:120, : features.N_MELS] = moves - tilt  # a darker voice or line
    plain = [features.normalize(x)[:, : features.N_MELS] for x in (a, b)]
    flat = [features.normalize(x, remove_shape=True)[:, : features.N_MELS] for x in (a, b)]
    assert np.abs(plain[0] - plain[1]).max() > 1.0
    assert np.abs(flat[0][20:120] - flat[1][20:120]).max() < 0.05  # the shape's mean removed: equal
    assert (flat[0][:20] == features.FLOOR).all() and (flat[1][130:] == features.FLOOR).all()
    assert flat[0].min() >= features.FLOOR
