from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class Codes(_message.Message):
    __slots__ = ("n_codebooks", "n_frames", "values")
    N_CODEBOOKS_FIELD_NUMBER: _ClassVar[int]
    N_FRAMES_FIELD_NUMBER: _ClassVar[int]
    VALUES_FIELD_NUMBER: _ClassVar[int]
    n_codebooks: int
    n_frames: int
    values: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, n_codebooks: _Optional[int] = ..., n_frames: _Optional[int] = ..., values: _Optional[_Iterable[int]] = ...) -> None: ...

class Latency(_message.Message):
    __slots__ = ("response_latency_ms", "voice_to_voice_ms", "encode_flush_ms", "context_fetch_ms", "first_frame_ms", "first_decode_ms")
    RESPONSE_LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    VOICE_TO_VOICE_MS_FIELD_NUMBER: _ClassVar[int]
    ENCODE_FLUSH_MS_FIELD_NUMBER: _ClassVar[int]
    CONTEXT_FETCH_MS_FIELD_NUMBER: _ClassVar[int]
    FIRST_FRAME_MS_FIELD_NUMBER: _ClassVar[int]
    FIRST_DECODE_MS_FIELD_NUMBER: _ClassVar[int]
    response_latency_ms: float
    voice_to_voice_ms: float
    encode_flush_ms: float
    context_fetch_ms: float
    first_frame_ms: float
    first_decode_ms: float
    def __init__(self, response_latency_ms: _Optional[float] = ..., voice_to_voice_ms: _Optional[float] = ..., encode_flush_ms: _Optional[float] = ..., context_fetch_ms: _Optional[float] = ..., first_frame_ms: _Optional[float] = ..., first_decode_ms: _Optional[float] = ...) -> None: ...

class DeleteSessionResponse(_message.Message):
    __slots__ = ("deleted",)
    DELETED_FIELD_NUMBER: _ClassVar[int]
    deleted: bool
    def __init__(self, deleted: _Optional[bool] = ...) -> None: ...
