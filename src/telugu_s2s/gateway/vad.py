"""Turn segmentation with webrtcvad on 16 kHz, 20 ms frames.

Speech starts when `min_speech_ms` of voiced frames fall within a window of
1.25 x `min_speech_ms` (short gaps inside a syllable are tolerated, clicks and
coughs shorter than `min_speech_ms` never start a turn). The turn's audio begins
`prefix_padding_ms` before the first voiced frame of that window. Speech ends
after `silence_duration_ms` of consecutive unvoiced frames (the hangover); the
turn's last voiced frame is reported as `audio_end_ms`.

webrtcvad keeps calling frames speech for about 120 ms after a voice stops (its own
overhang), even over digital silence, which made every turn end (and every voice-to-voice
figure start) that much late. So a frame also needs energy to count as voiced: at least
ENERGY_FLOOR_DBFS, and while a turn is in progress no more than RELATIVE_FLOOR_DB below
its loudest frame. Background noise well above that keeps webrtcvad's decision.

All times are stream-relative milliseconds of 16 kHz audio fed so far.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
import webrtcvad

VAD_RATE = 16000
FRAME_MS = 20
FRAME_SAMPLES = VAD_RATE * FRAME_MS // 1000
ENERGY_FLOOR_DBFS = -65.0  # quieter frames are silence, whatever webrtcvad says
RELATIVE_FLOOR_DB = 35.0  # in a turn: this far below its loudest frame is silence


def frame_dbfs(frame: np.ndarray) -> float:
    """RMS level of int16 samples in dB relative to full scale (-inf for digital silence)."""
    power = float(np.mean(np.square(frame, dtype=np.float64)))
    return 10.0 * math.log10(power / (32768.0 * 32768.0)) if power > 0 else -math.inf


@dataclass(frozen=True)
class VadSettings:
    aggressiveness: int = 2
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500
    min_speech_ms: int = 200

    def validate(self) -> VadSettings:
        """Raise ValueError naming the field and its allowed range."""
        if not 0 <= self.aggressiveness <= 3:
            raise ValueError(f"vad.aggressiveness must be 0..3, got {self.aggressiveness}")
        if not 0 <= self.prefix_padding_ms <= 1000:
            raise ValueError(f"vad.prefix_padding_ms must be 0..1000, got {self.prefix_padding_ms}")
        if not 100 <= self.silence_duration_ms <= 5000:
            raise ValueError(f"vad.silence_duration_ms must be 100..5000, got {self.silence_duration_ms}")
        if not 0 <= self.min_speech_ms <= 5000:
            raise ValueError(f"vad.min_speech_ms must be 0..5000, got {self.min_speech_ms}")
        return self

    @property
    def start_window_ms(self) -> int:
        """How far back the speech-start decision looks (bounds the audio to keep)."""
        return FRAME_MS * _window_frames(self.min_speech_ms)[1]


def _window_frames(min_speech_ms: int) -> tuple[int, int]:
    need = max(1, math.ceil(min_speech_ms / FRAME_MS))
    return need, need + math.ceil(need / 4)


@dataclass(frozen=True)
class SpeechStart:
    audio_start_ms: int
    decided_at_ms: int


@dataclass(frozen=True)
class SpeechEnd:
    audio_start_ms: int
    audio_end_ms: int
    decided_at_ms: int
    forced: bool = False  # COMMIT_TURN / END_OF_INPUT rather than silence


class Segmenter:
    """Feed 16 kHz int16 audio in any chunk size; get SpeechStart/SpeechEnd events."""

    def __init__(self, settings: VadSettings) -> None:
        self.settings = settings.validate()
        self._vad = webrtcvad.Vad(settings.aggressiveness)
        self._need, window = _window_frames(settings.min_speech_ms)
        self._window: deque[tuple[int, bool]] = deque(maxlen=window)
        self._pending = np.zeros(0, dtype=np.int16)
        self._frames = 0  # frames processed
        self.speaking = False
        self._start_ms = 0
        self._last_voiced_end_ms = 0
        self._silent_frames = 0
        self._floor_ms = 0  # a new turn never starts before the previous one was decided
        self._peak_db = -math.inf  # loudest frame of the turn in progress (and of the start window)

    @property
    def now_ms(self) -> int:
        return self._frames * FRAME_MS

    def feed(self, samples: np.ndarray) -> list[SpeechStart | SpeechEnd]:
        data = np.concatenate([self._pending, np.asarray(samples, dtype=np.int16)])
        n = len(data) // FRAME_SAMPLES
        self._pending = data[n * FRAME_SAMPLES :]
        events: list[SpeechStart | SpeechEnd] = []
        for i in range(n):
            frame = data[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES]
            voiced = self._vad.is_speech(frame.tobytes(), VAD_RATE) and self._loud_enough(frame_dbfs(frame))
            ev = self._step(voiced)
            if ev is not None:
                events.append(ev)
        return events

    def _loud_enough(self, db: float) -> bool:
        if db < ENERGY_FLOOR_DBFS:
            return False
        if self.speaking:
            if db < self._peak_db - RELATIVE_FLOOR_DB:
                return False
            self._peak_db = max(self._peak_db, db)
        return True

    def _step(self, voiced: bool) -> SpeechStart | SpeechEnd | None:
        start_ms = self._frames * FRAME_MS
        self._frames += 1
        end_ms = start_ms + FRAME_MS
        if not self.speaking:
            self._window.append((start_ms, voiced))
            voiced_starts = [t for t, v in self._window if v]
            if len(voiced_starts) >= self._need:
                self.speaking = True
                self._silent_frames = 0
                self._last_voiced_end_ms = end_ms
                self._start_ms = max(self._floor_ms, voiced_starts[0] - self.settings.prefix_padding_ms, 0)
                self._window.clear()
                return SpeechStart(audio_start_ms=self._start_ms, decided_at_ms=end_ms)
            return None
        if voiced:
            self._silent_frames = 0
            self._last_voiced_end_ms = end_ms
            return None
        self._silent_frames += 1
        if self._silent_frames * FRAME_MS >= self.settings.silence_duration_ms:
            return self._end(end_ms, forced=False)
        return None

    def _end(self, decided_ms: int, forced: bool) -> SpeechEnd:
        self.speaking = False
        self._silent_frames = 0
        self._window.clear()
        self._peak_db = -math.inf
        self._floor_ms = decided_ms
        return SpeechEnd(
            audio_start_ms=self._start_ms,
            audio_end_ms=self._last_voiced_end_ms,
            decided_at_ms=decided_ms,
            forced=forced,
        )

    def force_end(self) -> SpeechEnd | None:
        """End the current turn now (push-to-talk); None when nobody is speaking."""
        if not self.speaking:
            return None
        return self._end(max(self.now_ms, self._last_voiced_end_ms), forced=True)
