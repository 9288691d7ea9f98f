"""The end-of-turn decision the gateway's segmenter asks for at every silent 20 ms frame.

    silence >= max_wait_ms                              -> end (the caller is gone quiet)
    silence <  min_silence_ms (eagerness)               -> wait
    P(finished) >= threshold (eagerness)                -> end: it sounds finished
    silence >= timer_ms and P(finished) >= hold_below   -> end: the timer, when the model is unsure
    otherwise                                           -> wait: it sounds unfinished

The eagerness presets (min_silence_ms, threshold) are chosen on the turn model's validation
callers and travel in its weights file; `hold_below` is the probability under which the
model's "unfinished" overrides the timer.
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
    TIMER = "timer"  # TURN_MODEL mode, the model unsure: the timer
    MAX_WAIT = "max_wait"  # TURN_MODEL mode: the longest wait
    FORCED = "forced"  # COMMIT_TURN / END_OF_INPUT


@dataclass(frozen=True)
class Preset:
    min_silence_ms: int
    threshold: float
    hold_below: float = 0.2


def presets(model: TurnModel) -> dict[str, Preset]:
    """The eagerness presets the weights file carries."""
    raw = model.card.get("presets", {})
    missing = [e for e in EAGERNESS if e not in raw]
    if missing:
        raise ValueError(f"the turn model's card has no preset for eagerness {', '.join(missing)}")
    return {e: Preset(**raw[e]) for e in EAGERNESS}


class TurnDetector:
    """One call's end-of-turn decisions (the model is shared; this holds no audio)."""

    def __init__(self, model: TurnModel, eagerness: str, timer_ms: int, max_wait_ms: int) -> None:
        self.model = model
        self.preset = presets(model)[eagerness]
        self.timer_ms = timer_ms
        self.max_wait_ms = max(max_wait_ms, self.preset.min_silence_ms)
        self.last_prob: float | None = None

    def decide(self, audio: features.StreamingFeatures, silence_ms: int) -> EndReason | None:
        """None to keep waiting; otherwise why the turn ends now. `audio` holds the caller's
        audio up to now (its `window`, the last 1.5 s of features, is read only if needed)."""
        if silence_ms >= self.max_wait_ms:
            return EndReason.MAX_WAIT
        if silence_ms < self.preset.min_silence_ms:
            return None
        p = self.last_prob = self.model.prob(features.normalize(audio.window), silence_ms)
        if p >= self.preset.threshold:
            return EndReason.MODEL
        if silence_ms >= self.timer_ms and p >= self.preset.hold_below:
            return EndReason.TIMER
        return None
