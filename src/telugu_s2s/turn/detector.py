"""The end-of-turn decision the gateway's segmenter asks for at every silent 20 ms frame.

    silence >= max_wait_ms                              -> end: the fallback timer
    silence <  min_silence_ms (eagerness)               -> wait
    P(finished) >= threshold at `confirm` asks in a row -> end: it sounds finished
    otherwise                                           -> wait: unfinished, or unsure

The eagerness presets (min_silence_ms, threshold, confirm) are chosen on the turn model's
validation callers and travel in its weights file. A middle tier that let the 500 ms timer end
turns the model was unsure about was tried and dropped: on the validation callers it cut off
14-18 % of the turns with a 250-800 ms pause (the model is unsure in many pauses), against
under 2 % without it, for the same median wait (docs/turn-taking.md).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from telugu_s2s.turn import features
from telugu_s2s.turn.model import TurnModel

EAGERNESS = ("low", "medium", "high")


class EndReason(str, Enum):
    SILENCE = "silence"  # SILENCE mode: the fixed timer
    MODEL = "turn_model"  # the model was confident
    MAX_WAIT = "max_wait"  # TURN_MODEL mode: the longest wait
    FORCED = "forced"  # COMMIT_TURN / END_OF_INPUT


@dataclass(frozen=True)
class Preset:
    min_silence_ms: int
    threshold: float
    confirm: int = 1  # asks in a row (20 ms apart) at or over the threshold


def presets(model: TurnModel) -> dict[str, Preset]:
    """The eagerness presets the weights file carries."""
    raw = model.card.get("presets", {})
    missing = [e for e in EAGERNESS if e not in raw]
    if missing:
        raise ValueError(f"the turn model's card has no preset for eagerness {', '.join(missing)}")
    return {e: Preset(**raw[e]) for e in EAGERNESS}


class TurnDetector:
    """One call's end-of-turn decisions (the model is shared; this holds no audio)."""

    def __init__(self, model: TurnModel, eagerness: str, max_wait_ms: int) -> None:
        self.model = model
        self.preset = presets(model)[eagerness]
        self.max_wait_ms = max(max_wait_ms, self.preset.min_silence_ms)
        self.last_prob: float | None = None  # this silence's latest P(finished); None before its first ask
        self._sure = 0  # asks in a row at or over the threshold, in this silence

    def decide(self, audio: features.StreamingFeatures, silence_ms: int) -> EndReason | None:
        """None to keep waiting; otherwise why the turn ends now. `audio` holds the caller's
        audio up to now (its `window`, the last 1.5 s of features, is read only if needed)."""
        if silence_ms >= self.max_wait_ms:
            return EndReason.MAX_WAIT
        if silence_ms < self.preset.min_silence_ms:
            self._sure = 0
            self.last_prob = None  # no ask yet in this silence
            return None
        p = self.last_prob = self.model.prob(self.model.normalize(audio.window), silence_ms)
        self._sure = self._sure + 1 if p >= self.preset.threshold else 0
        if self._sure >= self.preset.confirm:
            return EndReason.MODEL
        return None
