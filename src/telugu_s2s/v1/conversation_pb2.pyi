import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from telugu_s2s.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AudioEncoding(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    AUDIO_ENCODING_UNSPECIFIED: _ClassVar[AudioEncoding]
    PCM16: _ClassVar[AudioEncoding]
    MULAW: _ClassVar[AudioEncoding]
    ALAW: _ClassVar[AudioEncoding]
AUDIO_ENCODING_UNSPECIFIED: AudioEncoding
PCM16: AudioEncoding
MULAW: AudioEncoding
ALAW: AudioEncoding

class AudioFormat(_message.Message):
    __slots__ = ("encoding", "sample_rate_hz")
    ENCODING_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    encoding: AudioEncoding
    sample_rate_hz: int
    def __init__(self, encoding: _Optional[_Union[AudioEncoding, str]] = ..., sample_rate_hz: _Optional[int] = ...) -> None: ...

class VadSettings(_message.Message):
    __slots__ = ("aggressiveness", "prefix_padding_ms", "silence_duration_ms", "min_speech_ms")
    AGGRESSIVENESS_FIELD_NUMBER: _ClassVar[int]
    PREFIX_PADDING_MS_FIELD_NUMBER: _ClassVar[int]
    SILENCE_DURATION_MS_FIELD_NUMBER: _ClassVar[int]
    MIN_SPEECH_MS_FIELD_NUMBER: _ClassVar[int]
    aggressiveness: int
    prefix_padding_ms: int
    silence_duration_ms: int
    min_speech_ms: int
    def __init__(self, aggressiveness: _Optional[int] = ..., prefix_padding_ms: _Optional[int] = ..., silence_duration_ms: _Optional[int] = ..., min_speech_ms: _Optional[int] = ...) -> None: ...

class TurnDetection(_message.Message):
    __slots__ = ("mode", "eagerness", "max_wait_ms")
    class Mode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        MODE_UNSPECIFIED: _ClassVar[TurnDetection.Mode]
        SILENCE: _ClassVar[TurnDetection.Mode]
        TURN_MODEL: _ClassVar[TurnDetection.Mode]
    MODE_UNSPECIFIED: TurnDetection.Mode
    SILENCE: TurnDetection.Mode
    TURN_MODEL: TurnDetection.Mode
    class Eagerness(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        EAGERNESS_UNSPECIFIED: _ClassVar[TurnDetection.Eagerness]
        LOW: _ClassVar[TurnDetection.Eagerness]
        MEDIUM: _ClassVar[TurnDetection.Eagerness]
        HIGH: _ClassVar[TurnDetection.Eagerness]
    EAGERNESS_UNSPECIFIED: TurnDetection.Eagerness
    LOW: TurnDetection.Eagerness
    MEDIUM: TurnDetection.Eagerness
    HIGH: TurnDetection.Eagerness
    MODE_FIELD_NUMBER: _ClassVar[int]
    EAGERNESS_FIELD_NUMBER: _ClassVar[int]
    MAX_WAIT_MS_FIELD_NUMBER: _ClassVar[int]
    mode: TurnDetection.Mode
    eagerness: TurnDetection.Eagerness
    max_wait_ms: int
    def __init__(self, mode: _Optional[_Union[TurnDetection.Mode, str]] = ..., eagerness: _Optional[_Union[TurnDetection.Eagerness, str]] = ..., max_wait_ms: _Optional[int] = ...) -> None: ...

class SessionConfig(_message.Message):
    __slots__ = ("session_id", "voice", "input_format", "output_format", "vad", "barge_in", "turn_detection")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    VOICE_FIELD_NUMBER: _ClassVar[int]
    INPUT_FORMAT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FORMAT_FIELD_NUMBER: _ClassVar[int]
    VAD_FIELD_NUMBER: _ClassVar[int]
    BARGE_IN_FIELD_NUMBER: _ClassVar[int]
    TURN_DETECTION_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    voice: str
    input_format: AudioFormat
    output_format: AudioFormat
    vad: VadSettings
    barge_in: bool
    turn_detection: TurnDetection
    def __init__(self, session_id: _Optional[str] = ..., voice: _Optional[str] = ..., input_format: _Optional[_Union[AudioFormat, _Mapping]] = ..., output_format: _Optional[_Union[AudioFormat, _Mapping]] = ..., vad: _Optional[_Union[VadSettings, _Mapping]] = ..., barge_in: _Optional[bool] = ..., turn_detection: _Optional[_Union[TurnDetection, _Mapping]] = ...) -> None: ...

class AudioChunk(_message.Message):
    __slots__ = ("audio",)
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    audio: bytes
    def __init__(self, audio: _Optional[bytes] = ...) -> None: ...

class Control(_message.Message):
    __slots__ = ("type", "voice")
    class Type(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        TYPE_UNSPECIFIED: _ClassVar[Control.Type]
        COMMIT_TURN: _ClassVar[Control.Type]
        INTERRUPT: _ClassVar[Control.Type]
        END_OF_INPUT: _ClassVar[Control.Type]
        SET_VOICE: _ClassVar[Control.Type]
    TYPE_UNSPECIFIED: Control.Type
    COMMIT_TURN: Control.Type
    INTERRUPT: Control.Type
    END_OF_INPUT: Control.Type
    SET_VOICE: Control.Type
    TYPE_FIELD_NUMBER: _ClassVar[int]
    VOICE_FIELD_NUMBER: _ClassVar[int]
    type: Control.Type
    voice: str
    def __init__(self, type: _Optional[_Union[Control.Type, str]] = ..., voice: _Optional[str] = ...) -> None: ...

class ClientMessage(_message.Message):
    __slots__ = ("config", "audio", "control")
    CONFIG_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    CONTROL_FIELD_NUMBER: _ClassVar[int]
    config: SessionConfig
    audio: AudioChunk
    control: Control
    def __init__(self, config: _Optional[_Union[SessionConfig, _Mapping]] = ..., audio: _Optional[_Union[AudioChunk, _Mapping]] = ..., control: _Optional[_Union[Control, _Mapping]] = ...) -> None: ...

class SessionStarted(_message.Message):
    __slots__ = ("session_id", "resumed", "turns_in_context", "voice", "input_format", "output_format", "untrained_model")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    RESUMED_FIELD_NUMBER: _ClassVar[int]
    TURNS_IN_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    VOICE_FIELD_NUMBER: _ClassVar[int]
    INPUT_FORMAT_FIELD_NUMBER: _ClassVar[int]
    OUTPUT_FORMAT_FIELD_NUMBER: _ClassVar[int]
    UNTRAINED_MODEL_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    resumed: bool
    turns_in_context: int
    voice: str
    input_format: AudioFormat
    output_format: AudioFormat
    untrained_model: bool
    def __init__(self, session_id: _Optional[str] = ..., resumed: _Optional[bool] = ..., turns_in_context: _Optional[int] = ..., voice: _Optional[str] = ..., input_format: _Optional[_Union[AudioFormat, _Mapping]] = ..., output_format: _Optional[_Union[AudioFormat, _Mapping]] = ..., untrained_model: _Optional[bool] = ...) -> None: ...

class SpeechStarted(_message.Message):
    __slots__ = ("audio_start_ms", "decided_at_ms")
    AUDIO_START_MS_FIELD_NUMBER: _ClassVar[int]
    DECIDED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    audio_start_ms: int
    decided_at_ms: int
    def __init__(self, audio_start_ms: _Optional[int] = ..., decided_at_ms: _Optional[int] = ...) -> None: ...

class SpeechStopped(_message.Message):
    __slots__ = ("audio_end_ms", "decided_at_ms", "reason")
    AUDIO_END_MS_FIELD_NUMBER: _ClassVar[int]
    DECIDED_AT_MS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    audio_end_ms: int
    decided_at_ms: int
    reason: str
    def __init__(self, audio_end_ms: _Optional[int] = ..., decided_at_ms: _Optional[int] = ..., reason: _Optional[str] = ...) -> None: ...

class ResponseStarted(_message.Message):
    __slots__ = ("turn_id", "voice")
    TURN_ID_FIELD_NUMBER: _ClassVar[int]
    VOICE_FIELD_NUMBER: _ClassVar[int]
    turn_id: str
    voice: str
    def __init__(self, turn_id: _Optional[str] = ..., voice: _Optional[str] = ...) -> None: ...

class ResponseAudio(_message.Message):
    __slots__ = ("turn_id", "seq", "audio")
    TURN_ID_FIELD_NUMBER: _ClassVar[int]
    SEQ_FIELD_NUMBER: _ClassVar[int]
    AUDIO_FIELD_NUMBER: _ClassVar[int]
    turn_id: str
    seq: int
    audio: bytes
    def __init__(self, turn_id: _Optional[str] = ..., seq: _Optional[int] = ..., audio: _Optional[bytes] = ...) -> None: ...

class ResponseDone(_message.Message):
    __slots__ = ("turn_id", "audio_ms", "latency", "turns_in_context")
    TURN_ID_FIELD_NUMBER: _ClassVar[int]
    AUDIO_MS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_FIELD_NUMBER: _ClassVar[int]
    TURNS_IN_CONTEXT_FIELD_NUMBER: _ClassVar[int]
    turn_id: str
    audio_ms: int
    latency: _common_pb2.Latency
    turns_in_context: int
    def __init__(self, turn_id: _Optional[str] = ..., audio_ms: _Optional[int] = ..., latency: _Optional[_Union[_common_pb2.Latency, _Mapping]] = ..., turns_in_context: _Optional[int] = ...) -> None: ...

class ResponseInterrupted(_message.Message):
    __slots__ = ("turn_id", "played_ms")
    TURN_ID_FIELD_NUMBER: _ClassVar[int]
    PLAYED_MS_FIELD_NUMBER: _ClassVar[int]
    turn_id: str
    played_ms: int
    def __init__(self, turn_id: _Optional[str] = ..., played_ms: _Optional[int] = ...) -> None: ...

class Error(_message.Message):
    __slots__ = ("code", "message", "turn_id")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TURN_ID_FIELD_NUMBER: _ClassVar[int]
    code: str
    message: str
    turn_id: str
    def __init__(self, code: _Optional[str] = ..., message: _Optional[str] = ..., turn_id: _Optional[str] = ...) -> None: ...

class ServerMessage(_message.Message):
    __slots__ = ("session_started", "speech_started", "speech_stopped", "response_started", "response_audio", "response_done", "response_interrupted", "error")
    SESSION_STARTED_FIELD_NUMBER: _ClassVar[int]
    SPEECH_STARTED_FIELD_NUMBER: _ClassVar[int]
    SPEECH_STOPPED_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_STARTED_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_AUDIO_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_DONE_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_INTERRUPTED_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    session_started: SessionStarted
    speech_started: SpeechStarted
    speech_stopped: SpeechStopped
    response_started: ResponseStarted
    response_audio: ResponseAudio
    response_done: ResponseDone
    response_interrupted: ResponseInterrupted
    error: Error
    def __init__(self, session_started: _Optional[_Union[SessionStarted, _Mapping]] = ..., speech_started: _Optional[_Union[SpeechStarted, _Mapping]] = ..., speech_stopped: _Optional[_Union[SpeechStopped, _Mapping]] = ..., response_started: _Optional[_Union[ResponseStarted, _Mapping]] = ..., response_audio: _Optional[_Union[ResponseAudio, _Mapping]] = ..., response_done: _Optional[_Union[ResponseDone, _Mapping]] = ..., response_interrupted: _Optional[_Union[ResponseInterrupted, _Mapping]] = ..., error: _Optional[_Union[Error, _Mapping]] = ...) -> None: ...

class ListVoicesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Voice(_message.Message):
    __slots__ = ("id", "display_name", "gender", "description")
    ID_FIELD_NUMBER: _ClassVar[int]
    DISPLAY_NAME_FIELD_NUMBER: _ClassVar[int]
    GENDER_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    id: str
    display_name: str
    gender: str
    description: str
    def __init__(self, id: _Optional[str] = ..., display_name: _Optional[str] = ..., gender: _Optional[str] = ..., description: _Optional[str] = ...) -> None: ...

class ListVoicesResponse(_message.Message):
    __slots__ = ("voices",)
    VOICES_FIELD_NUMBER: _ClassVar[int]
    voices: _containers.RepeatedCompositeFieldContainer[Voice]
    def __init__(self, voices: _Optional[_Iterable[_Union[Voice, _Mapping]]] = ...) -> None: ...

class GetSessionRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...

class SessionInfo(_message.Message):
    __slots__ = ("session_id", "voice", "turn_count", "created_at", "updated_at")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    VOICE_FIELD_NUMBER: _ClassVar[int]
    TURN_COUNT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    voice: str
    turn_count: int
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, session_id: _Optional[str] = ..., voice: _Optional[str] = ..., turn_count: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class DeleteSessionRequest(_message.Message):
    __slots__ = ("session_id",)
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    def __init__(self, session_id: _Optional[str] = ...) -> None: ...
