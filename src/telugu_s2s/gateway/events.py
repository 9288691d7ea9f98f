"""What flows in and out of a call, as the gateway's own types (pb2 stays in servicer.py)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from telugu_s2s.common.audio import AudioFormat
from telugu_s2s.gateway.context_client import Latency
from telugu_s2s.gateway.vad import TurnSettings, VadSettings

# ------------------------------------------------------------------ caller -> gateway


@dataclass(frozen=True)
class CallSettings:
    """A validated SessionConfig."""

    session_id: str  # "" starts a new session
    voice: str  # "" keeps a resumed session's voice / picks the default
    input_format: AudioFormat
    output_format: AudioFormat
    vad: VadSettings
    barge_in: bool
    turn: TurnSettings = TurnSettings()


@dataclass(frozen=True)
class AudioInput:
    data: bytes


class ControlType(Enum):
    COMMIT_TURN = 1
    INTERRUPT = 2
    END_OF_INPUT = 3
    SET_VOICE = 4


@dataclass(frozen=True)
class ControlInput:
    type: ControlType
    voice: str = ""


ClientInput = CallSettings | AudioInput | ControlInput

# ------------------------------------------------------------------ gateway -> caller


@dataclass(frozen=True)
class SessionStartedEvent:
    session_id: str
    resumed: bool
    turns_in_context: int
    voice: str
    input_format: AudioFormat
    output_format: AudioFormat
    untrained_model: bool


@dataclass(frozen=True)
class SpeechStartedEvent:
    audio_start_ms: int
    decided_at_ms: int


@dataclass(frozen=True)
class SpeechStoppedEvent:
    audio_end_ms: int
    decided_at_ms: int
    reason: str = ""  # what ended the turn (turn.detector.EndReason)


@dataclass(frozen=True)
class ResponseStartedEvent:
    turn_id: str
    voice: str


@dataclass(frozen=True)
class ResponseAudioEvent:
    turn_id: str
    seq: int
    audio: bytes


@dataclass(frozen=True)
class ResponseDoneEvent:
    turn_id: str
    audio_ms: int
    latency: Latency
    turns_in_context: int


@dataclass(frozen=True)
class ResponseInterruptedEvent:
    turn_id: str
    played_ms: int


@dataclass(frozen=True)
class ErrorEvent:
    code: str
    message: str
    turn_id: str = ""


ServerEvent = (
    SessionStartedEvent
    | SpeechStartedEvent
    | SpeechStoppedEvent
    | ResponseStartedEvent
    | ResponseAudioEvent
    | ResponseDoneEvent
    | ResponseInterruptedEvent
    | ErrorEvent
)
