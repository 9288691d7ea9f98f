"""The end-of-turn policy (turn.detector) with a scripted model, and the weights file checks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from telugu_s2s.turn import features
from telugu_s2s.turn.detector import EndReason, TurnDetector, presets
from telugu_s2s.turn.model import DEFAULT_WEIGHTS, FORMAT, TurnModel, TurnModelError

PRESETS = {
    "low": {"min_silence_ms": 300, "threshold": 0.95, "confirm": 1},
    "medium": {"min_silence_ms": 200, "threshold": 0.8, "confirm": 1},
    "high": {"min_silence_ms": 100, "threshold": 0.6, "confirm": 1},
}


class Scripted(TurnModel):
    """P(finished) is whatever the test says: a constant, or a function of the silence."""

    def __init__(self, p, presets=PRESETS) -> None:
        super().__init__({}, {"format": FORMAT, "presets": presets})
        self.p = p
        self.asked: list[int] = []

    def prob(self, window, silence_ms):
        self.asked.append(int(silence_ms))
        return self.p(silence_ms) if callable(self.p) else self.p


AUDIO = features.StreamingFeatures()
AUDIO.feed(np.zeros(features.RATE * 2, np.int16))
MEL = np.zeros((features.WINDOW_FRAMES, features.N_FEATURES), np.float32)


def first_end(model: TurnModel, eagerness: str = "medium", max_wait_ms: int = 1500):
    det = TurnDetector(model, eagerness, max_wait_ms)
    for silence in range(20, 5001, 20):
        reason = det.decide(AUDIO, silence)
        if reason is not None:
            return silence, reason
    raise AssertionError("never ended")


@pytest.mark.parametrize("eagerness", ["low", "medium", "high"])
def test_a_confident_model_ends_the_turn_at_the_presets_shortest_silence(eagerness):
    model = Scripted(0.99)
    assert first_end(model, eagerness) == (PRESETS[eagerness]["min_silence_ms"], EndReason.MODEL)
    assert min(model.asked) == PRESETS[eagerness]["min_silence_ms"]  # never asked earlier


def test_confirm_needs_that_many_confident_asks_in_a_row():
    presets = {**PRESETS, "medium": {"min_silence_ms": 100, "threshold": 0.9, "confirm": 3}}
    # Confident at 100 and 120 ms, not at 140, then from 160 ms on: ends at 200 (160, 180, 200).
    model = Scripted(lambda ms: 0.5 if ms == 140 else 0.95, presets)
    assert first_end(model) == (200, EndReason.MODEL)


def test_an_unsure_or_unfinished_sounding_turn_waits_up_to_max_wait():
    assert first_end(Scripted(0.7), max_wait_ms=1200) == (1200, EndReason.MAX_WAIT)


def test_an_unfinished_sounding_turn_waits_up_to_max_wait():
    assert first_end(Scripted(0.05), max_wait_ms=1200) == (1200, EndReason.MAX_WAIT)


def test_max_wait_is_never_shorter_than_the_presets_shortest_silence():
    assert first_end(Scripted(0.05), eagerness="low", max_wait_ms=200) == (300, EndReason.MAX_WAIT)


def test_presets_come_from_the_weights_card():
    model = TurnModel({}, {"format": FORMAT, "presets": {"low": PRESETS["low"]}})
    with pytest.raises(ValueError, match="medium, high"):
        presets(model)


def test_the_shipped_weights_load_with_their_presets_and_test_report():
    model = TurnModel.load(DEFAULT_WEIGHTS)
    p = presets(model)
    assert p["low"].min_silence_ms >= p["high"].min_silence_ms
    assert {"timer_500ms", "medium"} <= model.card["test"].keys()
    prob = model.prob(MEL, 200)
    assert 0.0 <= prob <= 1.0


def test_missing_or_foreign_weights_are_a_clear_error(tmp_path):
    with pytest.raises(TurnModelError, match="cannot read"):
        TurnModel.load(tmp_path / "nope.npz")
    other = tmp_path / "other.npz"
    np.savez(other, card=np.array(json.dumps({"format": "something-else"})))
    with pytest.raises(TurnModelError, match="not a telugu-s2s-turn/1"):
        TurnModel.load(other)
    partial = tmp_path / "partial.npz"
    np.savez(partial, card=np.array(json.dumps({"format": FORMAT})), mean=np.zeros(40))
    with pytest.raises(TurnModelError, match="lacks"):
        TurnModel.load(partial)


def test_the_card_says_how_a_window_is_normalized(tmp_path):
    """Weights trained without the spectral shape get their input so in the gateway too; an
    unknown normalization is refused when the weights load."""
    from telugu_s2s.turn.model import PEAK_AND_SHAPE

    raw = np.random.default_rng(1).uniform(-8, 0, (features.WINDOW_FRAMES, features.N_FEATURES)).astype(np.float32)
    raw[:, features.N_MELS :] = 0.0
    old = TurnModel({}, {"format": FORMAT})
    flat = TurnModel({}, {"format": FORMAT, "normalization": PEAK_AND_SHAPE})
    np.testing.assert_array_equal(old.normalize(raw), features.normalize(raw))
    np.testing.assert_array_equal(flat.normalize(raw), features.normalize(raw, remove_shape=True))
    assert not np.array_equal(flat.normalize(raw), old.normalize(raw))

    shipped = TurnModel.load(DEFAULT_WEIGHTS)
    params = {k: v for k, v in shipped.params.items()}
    odd = tmp_path / "odd.npz"
    np.savez(odd, card=np.array(json.dumps({"format": FORMAT, "normalization": "loudness"})), **params)
    with pytest.raises(TurnModelError, match="unknown normalization 'loudness'"):
        TurnModel.load(odd)
