import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from telugu_s2s.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class SessionRef(_message.Message):
    __slots__ = ("session_id", "tenant")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    tenant: str
    def __init__(self, session_id: _Optional[str] = ..., tenant: _Optional[str] = ...) -> None: ...

class CreateSessionRequest(_message.Message):
    __slots__ = ("voice", "tenant")
    VOICE_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    voice: str
    tenant: str
    def __init__(self, voice: _Optional[str] = ..., tenant: _Optional[str] = ...) -> None: ...

class SessionRecord(_message.Message):
    __slots__ = ("session_id", "tenant", "voice", "turn_count", "total_turns", "created_at", "updated_at")
    SESSION_ID_FIELD_NUMBER: _ClassVar[int]
    TENANT_FIELD_NUMBER: _ClassVar[int]
    VOICE_FIELD_NUMBER: _ClassVar[int]
    TURN_COUNT_FIELD_NUMBER: _ClassVar[int]
    TOTAL_TURNS_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    UPDATED_AT_FIELD_NUMBER: _ClassVar[int]
    session_id: str
    tenant: str
    voice: str
    turn_count: int
    total_turns: int
    created_at: _timestamp_pb2.Timestamp
    updated_at: _timestamp_pb2.Timestamp
    def __init__(self, session_id: _Optional[str] = ..., tenant: _Optional[str] = ..., voice: _Optional[str] = ..., turn_count: _Optional[int] = ..., total_turns: _Optional[int] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., updated_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SetVoiceRequest(_message.Message):
    __slots__ = ("session", "voice")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    VOICE_FIELD_NUMBER: _ClassVar[int]
    session: SessionRef
    voice: str
    def __init__(self, session: _Optional[_Union[SessionRef, _Mapping]] = ..., voice: _Optional[str] = ...) -> None: ...

class Turn(_message.Message):
    __slots__ = ("turn_id", "user_codes", "reply_codes", "interrupted", "played_ms", "voice", "latency", "created_at")
    TURN_ID_FIELD_NUMBER: _ClassVar[int]
    USER_CODES_FIELD_NUMBER: _ClassVar[int]
    REPLY_CODES_FIELD_NUMBER: _ClassVar[int]
    INTERRUPTED_FIELD_NUMBER: _ClassVar[int]
    PLAYED_MS_FIELD_NUMBER: _ClassVar[int]
    VOICE_FIELD_NUMBER: _ClassVar[int]
    LATENCY_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    turn_id: str
    user_codes: _common_pb2.Codes
    reply_codes: _common_pb2.Codes
    interrupted: bool
    played_ms: int
    voice: str
    latency: _common_pb2.Latency
    created_at: _timestamp_pb2.Timestamp
    def __init__(self, turn_id: _Optional[str] = ..., user_codes: _Optional[_Union[_common_pb2.Codes, _Mapping]] = ..., reply_codes: _Optional[_Union[_common_pb2.Codes, _Mapping]] = ..., interrupted: _Optional[bool] = ..., played_ms: _Optional[int] = ..., voice: _Optional[str] = ..., latency: _Optional[_Union[_common_pb2.Latency, _Mapping]] = ..., created_at: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class AppendTurnRequest(_message.Message):
    __slots__ = ("session", "turn")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    TURN_FIELD_NUMBER: _ClassVar[int]
    session: SessionRef
    turn: Turn
    def __init__(self, session: _Optional[_Union[SessionRef, _Mapping]] = ..., turn: _Optional[_Union[Turn, _Mapping]] = ...) -> None: ...

class AppendTurnResponse(_message.Message):
    __slots__ = ("turn_count", "turn_index")
    TURN_COUNT_FIELD_NUMBER: _ClassVar[int]
    TURN_INDEX_FIELD_NUMBER: _ClassVar[int]
    turn_count: int
    turn_index: int
    def __init__(self, turn_count: _Optional[int] = ..., turn_index: _Optional[int] = ...) -> None: ...

class GetContextRequest(_message.Message):
    __slots__ = ("session", "max_turns")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    MAX_TURNS_FIELD_NUMBER: _ClassVar[int]
    session: SessionRef
    max_turns: int
    def __init__(self, session: _Optional[_Union[SessionRef, _Mapping]] = ..., max_turns: _Optional[int] = ...) -> None: ...

class ContextResponse(_message.Message):
    __slots__ = ("session", "turns")
    SESSION_FIELD_NUMBER: _ClassVar[int]
    TURNS_FIELD_NUMBER: _ClassVar[int]
    session: SessionRecord
    turns: _containers.RepeatedCompositeFieldContainer[Turn]
    def __init__(self, session: _Optional[_Union[SessionRecord, _Mapping]] = ..., turns: _Optional[_Iterable[_Union[Turn, _Mapping]]] = ...) -> None: ...
