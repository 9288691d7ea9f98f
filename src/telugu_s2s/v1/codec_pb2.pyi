from telugu_s2s.v1 import common_pb2 as _common_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AudioIn(_message.Message):
    __slots__ = ("pcm16", "sample_rate_hz", "end_of_segment")
    PCM16_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    END_OF_SEGMENT_FIELD_NUMBER: _ClassVar[int]
    pcm16: bytes
    sample_rate_hz: int
    end_of_segment: bool
    def __init__(self, pcm16: _Optional[bytes] = ..., sample_rate_hz: _Optional[int] = ..., end_of_segment: _Optional[bool] = ...) -> None: ...

class CodeFrames(_message.Message):
    __slots__ = ("codes", "first_frame", "end_of_segment")
    CODES_FIELD_NUMBER: _ClassVar[int]
    FIRST_FRAME_FIELD_NUMBER: _ClassVar[int]
    END_OF_SEGMENT_FIELD_NUMBER: _ClassVar[int]
    codes: _common_pb2.Codes
    first_frame: int
    end_of_segment: bool
    def __init__(self, codes: _Optional[_Union[_common_pb2.Codes, _Mapping]] = ..., first_frame: _Optional[int] = ..., end_of_segment: _Optional[bool] = ...) -> None: ...

class AudioOut(_message.Message):
    __slots__ = ("pcm16", "sample_rate_hz", "first_sample", "end_of_segment")
    PCM16_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    FIRST_SAMPLE_FIELD_NUMBER: _ClassVar[int]
    END_OF_SEGMENT_FIELD_NUMBER: _ClassVar[int]
    pcm16: bytes
    sample_rate_hz: int
    first_sample: int
    end_of_segment: bool
    def __init__(self, pcm16: _Optional[bytes] = ..., sample_rate_hz: _Optional[int] = ..., first_sample: _Optional[int] = ..., end_of_segment: _Optional[bool] = ...) -> None: ...

class InfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class CodecInfo(_message.Message):
    __slots__ = ("sample_rate_hz", "frame_rate_hz", "samples_per_frame", "n_codebooks", "codebook_size", "bandwidth_kbps", "weights", "random_weights")
    SAMPLE_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    FRAME_RATE_HZ_FIELD_NUMBER: _ClassVar[int]
    SAMPLES_PER_FRAME_FIELD_NUMBER: _ClassVar[int]
    N_CODEBOOKS_FIELD_NUMBER: _ClassVar[int]
    CODEBOOK_SIZE_FIELD_NUMBER: _ClassVar[int]
    BANDWIDTH_KBPS_FIELD_NUMBER: _ClassVar[int]
    WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    RANDOM_WEIGHTS_FIELD_NUMBER: _ClassVar[int]
    sample_rate_hz: int
    frame_rate_hz: float
    samples_per_frame: int
    n_codebooks: int
    codebook_size: int
    bandwidth_kbps: float
    weights: str
    random_weights: bool
    def __init__(self, sample_rate_hz: _Optional[int] = ..., frame_rate_hz: _Optional[float] = ..., samples_per_frame: _Optional[int] = ..., n_codebooks: _Optional[int] = ..., codebook_size: _Optional[int] = ..., bandwidth_kbps: _Optional[float] = ..., weights: _Optional[str] = ..., random_weights: _Optional[bool] = ...) -> None: ...
