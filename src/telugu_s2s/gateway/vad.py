"""Turn segmentation with webrtcvad on 16 kHz, 20 ms frames.

Speech starts when `min_speech_ms` of voiced frames fall within a window of
1.25 x `min_speech_ms` (short gaps inside a syllable are tolerated, clicks and
coughs shorter than `min_speech_ms` never start a turn). The turn's audio begins
`prefix_padding_ms` before the first voiced frame of that window. Speech ends
after `silence_duration_ms` of consecutive unvoiced frames (the hangover), or, with an
end-of-turn detector (telugu_s2s.turn), when the detector says so at a silent frame; the
turn's last voiced frame is reported as `audio_end_ms`.

webrtcvad keeps calling frames speech for about 120 ms after a voice stops (its own
overhang), even over digital silence, which made every turn end (and every voice-to-voice
figure start) that much late. So a frame also needs energy to count as voiced: at least
ENERGY_FLOOR_DBFS, and while a turn is in progress no more than RELATIVE_FLOOR_DB below
its loudest frame. Over background noise the same overhang sits at the noise's level, so a
frame must also stand SNR_GATE_DB above the line's noise floor (the NOISE_PERCENTILE-th
percentile of the last NOISE_WINDOW_FRAMES frames' levels): without that, a 150 ms noise
burst plus the overhang made a 250 ms "turn" and interrupted the reply.

All times are stream-relative milliseconds of 16 kHz audio fed so far.
"""

from __future__ import annotations

import bisect
import math
from collections import deque
from dataclasses import dataclass

import numpy as np
import webrtcvad

from telugu_s2s.turn.detector import EAGERNESS, EndReason, TurnDetector
from telugu_s2s.turn.features import StreamingFeatures

VAD_RATE = 16000
FRAME_MS = 20
FRAME_SAMPLES = VAD_RATE * FRAME_MS // 1000
ENERGY_FLOOR_DBFS = -65.0  # quieter frames are silence, whatever webrtcvad says
RELATIVE_FLOOR_DB = 35.0  # in a turn: this far below its loudest frame is silence
NOISE_WINDOW_FRAMES = 250  # 5 s of frame levels estimate the noise floor
NOISE_PERCENTILE = 10.0
NOISE_MIN_FRAMES = 25  # no noise gate until 0.5 s of the line has been heard
SILENCE_DBFS = -120.0  # digital silence, as a level the noise floor can take
SNR_GATE_DB = 8.0  # a voiced frame stands at least this far above the noise floor


def frame_dbfs(frame: np.ndarray) -> float:
    """RMS level of int16 samples in dB relative to full scale (-inf for digital silence)."""
    power = float(np.mean(np.square(frame, dtype=np.float64)))
    return 10.0 * math.log10(power / (32768.0 * 32768.0)) if power > 0 else -math.inf


@dataclass(frozen=True)
class VadSettings:
    aggressiveness: int = 2
    prefix_padding_ms: int = 300
    silence_duration_ms: int = 500
    min_speech_ms: int = 250  # also the shortest sound that interrupts a reply

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


TURN_MODES = ("silence", "turn_model")


@dataclass(frozen=True)
class TurnSettings:
    """How a call's turns end (the proto's TurnDetection)."""

    mode: str = ""  # "silence", "turn_model", or "" for the gateway's default
    eagerness: str = "medium"  # turn_model: "low" | "medium" | "high"
    max_wait_ms: int = 1500  # turn_model: the longest silence inside a turn

    def validate(self) -> TurnSettings:
        """Raise ValueError naming the field and its allowed values."""
        if self.mode and self.mode not in TURN_MODES:
            raise ValueError(f"turn_detection.mode must be one of {', '.join(TURN_MODES)}, got {self.mode!r}")
        if self.eagerness not in EAGERNESS:
            raise ValueError(f"turn_detection.eagerness must be one of {', '.join(EAGERNESS)}, got {self.eagerness!r}")
        if not 200 <= self.max_wait_ms <= 5000:
            raise ValueError(f"turn_detection.max_wait_ms must be 200..5000, got {self.max_wait_ms}")
        return self


class RollingPercentile:
    """The q-th percentile of the last `size` values, as np.percentile (linear) computes it,
    kept sorted as values come and go: about 1 us a value where np.percentile over a deque took
    about 65 us, at every 20 ms frame of every call."""

    def __init__(self, size: int, q: float) -> None:
        self._order: deque[float] = deque()
        self._sorted: list[float] = []
        self._size, self._q = size, q

    def __len__(self) -> int:
        return len(self._order)

    def append(self, value: float) -> None:
        if len(self._order) == self._size:
            del self._sorted[bisect.bisect_left(self._sorted, self._order.popleft())]
        self._order.append(value)
        bisect.insort(self._sorted, value)

    def value(self) -> float:
        s = self._sorted
        index = (len(s) - 1) * self._q / 100.0
        lo = math.floor(index)
        hi = min(lo + 1, len(s) - 1)
        a, b, t = s[lo], s[hi], index - lo
        # numpy's lerp: from the nearer end, so equal neighbours give exactly their value.
        return b - (b - a) * (1 - t) if t >= 0.5 else a + (b - a) * t


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
    reason: EndReason = EndReason.SILENCE

    @property
    def forced(self) -> bool:
        """COMMIT_TURN / END_OF_INPUT rather than silence."""
        return self.reason is EndReason.FORCED


@dataclass(frozen=True)
class LikelyEnd:
    """The end-of-turn model leans towards "finished" in this silence (at least the preempt
    threshold) but has not decided yet: a reply may be prepared, held until the turn ends."""

    audio_start_ms: int
    audio_end_ms: int
    decided_at_ms: int
    prob: float


@dataclass(frozen=True)
class Resumed:
    """Speech came back after a LikelyEnd: the turn goes on."""

    at_ms: int


Event = SpeechStart | SpeechEnd | LikelyEnd | Resumed


class Segmenter:
    """Feed 16 kHz int16 audio in any chunk size; get SpeechStart/SpeechEnd events (and, with a
    detector and `preempt_at` > 0, LikelyEnd/Resumed around the silences it leans to end)."""

    def __init__(self, settings: VadSettings, detector: TurnDetector | None = None, preempt_at: float = 0.0) -> None:
        self.settings = settings.validate()
        self._detector = detector
        self._preempt_at = preempt_at if detector is not None else 0.0
        self._leaning = False  # a LikelyEnd was reported in the current silence
        self._features = StreamingFeatures() if detector is not None else None  # what the detector reads
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
        self._levels = RollingPercentile(NOISE_WINDOW_FRAMES, NOISE_PERCENTILE)  # frame levels, dBFS
        self.last_frame_voiced = False  # the last frame's decision (scripts/compare_vad.py reads it)

    @property
    def noise_floor_db(self) -> float:
        """The line's background level (dBFS); -inf until there is enough audio to tell."""
        if len(self._levels) < NOISE_MIN_FRAMES:
            return -math.inf
        return self._levels.value()

    @property
    def now_ms(self) -> int:
        return self._frames * FRAME_MS

    def feed(self, samples: np.ndarray) -> list[Event]:
        data = np.concatenate([self._pending, np.asarray(samples, dtype=np.int16)])
        n = len(data) // FRAME_SAMPLES
        self._pending = data[n * FRAME_SAMPLES :]
        events: list[Event] = []
        for i in range(n):
            frame = data[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES]
            if self._features is not None:
                self._features.feed(frame)
            # Both run on every frame: webrtcvad adapts to what it hears, silences included,
            # and the gate tracks the line's noise floor.
            speech = self._vad.is_speech(frame.tobytes(), VAD_RATE)
            voiced = self.last_frame_voiced = self._loud_enough(frame_dbfs(frame)) and speech
            ev = self._step(voiced)
            if ev is not None:
                events.append(ev)
        return events

    def _loud_enough(self, db: float) -> bool:
        above_noise = db >= self.noise_floor_db + SNR_GATE_DB
        self._levels.append(max(db, SILENCE_DBFS))
        if db < ENERGY_FLOOR_DBFS or not above_noise:
            return False
        if self.speaking:
            if db < self._peak_db - RELATIVE_FLOOR_DB:
                return False
            self._peak_db = max(self._peak_db, db)
        return True

    def _step(self, voiced: bool) -> Event | None:
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
            if self._leaning:
                self._leaning = False
                return Resumed(at_ms=start_ms)
            return None
        self._silent_frames += 1
        silence_ms = self._silent_frames * FRAME_MS
        if self._detector is not None and self._features is not None:
            reason = self._detector.decide(self._features, silence_ms)
            if reason is not None:
                return self._end(end_ms, reason)
            if self._preempt_at and not self._leaning:
                p = self._detector.last_prob
                if p is not None and p >= self._preempt_at:
                    self._leaning = True
                    return LikelyEnd(self._start_ms, self._last_voiced_end_ms, end_ms, p)
            return None
        if silence_ms >= self.settings.silence_duration_ms:
            return self._end(end_ms, EndReason.SILENCE)
        return None

    def _end(self, decided_ms: int, reason: EndReason) -> SpeechEnd:
        self.speaking = False
        self._leaning = False
        self._silent_frames = 0
        self._window.clear()
        self._peak_db = -math.inf
        self._floor_ms = decided_ms
        return SpeechEnd(
            audio_start_ms=self._start_ms,
            audio_end_ms=self._last_voiced_end_ms,
            decided_at_ms=decided_ms,
            reason=reason,
        )

    def force_end(self) -> SpeechEnd | None:
        """End the current turn now (push-to-talk); None when nobody is speaking."""
        if not self.speaking:
            return None
        return self._end(max(self.now_ms, self._last_voiced_end_ms), EndReason.FORCED)
