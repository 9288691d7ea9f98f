"""The codec report's parts: the pitch tracker, the anchors' round trips, the scores."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from telugu_s2s.training import codec_report, pitch

SR = 16000


def voiced(f0: float, seconds: float = 1.0) -> np.ndarray:
    """A harmonic tone with a speech-like falling spectrum, at 0.3 peak."""
    t = np.arange(int(seconds * SR)) / SR
    x = sum(np.sin(2 * np.pi * f0 * k * t) / k for k in range(1, 8))
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


@pytest.mark.parametrize("f0", [85.0, 110.0, 170.0, 230.0])
def test_yin_finds_the_pitch_of_a_harmonic_tone(f0: float) -> None:
    track = pitch.yin(voiced(f0), SR)
    assert (track > 0).mean() > 0.95
    assert pitch.median_f0(track) == pytest.approx(f0, rel=0.01)


def test_noise_and_silence_are_unvoiced() -> None:
    noise = np.random.default_rng(0).normal(0, 0.1, SR).astype(np.float32)
    assert (pitch.yin(noise, SR) > 0).mean() < 0.1
    assert not (pitch.yin(np.zeros(SR, np.float32), SR) > 0).any()
    assert np.isnan(pitch.median_f0(np.zeros(10)))


def test_voicing_agreement_counts_only_audible_frames() -> None:
    ref = np.array([100.0, 100.0, 0.0, 0.0])
    out = np.array([100.0, 0.0, 0.0, 120.0])
    level = np.array([0.0, 0.0, 0.0, -60.0])  # the last frame is silent in the reference
    assert pitch.voicing_agreement(ref, out, level) == pytest.approx(2 / 3)


def test_scores_of_a_perfect_copy() -> None:
    x = voiced(140.0)
    s = codec_report._scores(x, x.copy())
    assert s["stoi"] > 0.99 and s["f0_ratio"] == pytest.approx(1.0) and s["voicing_agreement"] == 1.0
    assert s["log_mel_l1"] == pytest.approx(0.0, abs=1e-6)


def test_an_octave_error_shows_in_the_f0_ratio() -> None:
    s = codec_report._scores(voiced(110.0), voiced(220.0))
    assert s["f0_ratio"] == pytest.approx(2.0, rel=0.02)


def test_the_telephone_line_keeps_pitch_and_length() -> None:
    x = voiced(120.0)
    y = codec_report.telephone_roundtrip(x, SR)
    assert len(y) == len(x)
    assert pitch.median_f0(pitch.yin(y, SR)) == pytest.approx(120.0, rel=0.02)


@pytest.mark.skipif(not shutil.which("opusenc"), reason="opus-tools is not installed (make apt)")
def test_opus_round_trip_keeps_pitch_and_length() -> None:
    x = voiced(180.0)
    y = codec_report.opus_roundtrip(x, SR, 6)
    assert len(y) == len(x)
    assert pitch.median_f0(pitch.yin(y, SR)) == pytest.approx(180.0, rel=0.03)
