"""Hypothesis strategies for Converse input: ClientMessage sequences and raw audio bytes.

Used by the in-process fuzz tests (tests/unit/gateway/test_fuzz.py) and the short run
against the real stack (tests/e2e/test_fuzz.py).
"""

from __future__ import annotations

import grpc
import numpy as np
from hypothesis import strategies as st

from telugu_s2s.v1 import conversation_pb2 as pb

# Every way a Converse call may end. Anything else (INTERNAL, UNKNOWN, a hang) is a bug.
DEFINED_ENDINGS = {
    grpc.StatusCode.OK,
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    grpc.StatusCode.CANCELLED,  # the fuzzer itself cancelled the call
}

# grpc.aio quirk: a client that writes after the server has ended the call may read INTERNAL
# "Internal error from Core" (its failed write replaces the status). The server's own status
# is checked on the server side (the calls_total metric) in that case.
CLIENT_WRITE_RACE = (grpc.StatusCode.INTERNAL, "Internal error from Core")


def server_codes() -> dict[str, float]:
    """Calls ended so far by the gateway in this process, by gRPC status code (calls_total)."""
    from telugu_s2s.gateway import metrics

    out: dict[str, float] = {}
    for family in metrics.CALLS.collect():
        for sample in family.samples:
            if sample.name.endswith("_total"):
                out[sample.labels["code"]] = sample.value
    return out


RATES = [0, 8000, 16000, 24000, 48000, 44100, 11025, 1, 2**32 - 1]
ENCODINGS = [0, 1, 2, 3, 4, 7, 1000]
CONTROL_TYPES = [0, 1, 2, 3, 4, 5, 99]
VOICES = ["", "arjun", "ravi", "priya", "lakshmi", "Priya", "sita", "\u0c30\u0c35\u0c3f", "x" * 300]

session_ids = st.one_of(
    st.just(""),
    st.text(alphabet="0123456789abcdef", min_size=32, max_size=32),  # well-formed, unknown
    st.text(max_size=80),
)


@st.composite
def audio_formats(draw) -> pb.AudioFormat:
    return pb.AudioFormat(encoding=draw(st.sampled_from(ENCODINGS)), sample_rate_hz=draw(st.sampled_from(RATES)))


@st.composite
def vad_settings(draw) -> pb.VadSettings:
    v = pb.VadSettings()
    for name, lo, hi in (
        ("aggressiveness", 0, 5),
        ("prefix_padding_ms", 0, 2**32 - 1),
        ("silence_duration_ms", 0, 10000),
        ("min_speech_ms", 0, 5000),
    ):
        if draw(st.booleans()):
            setattr(v, name, draw(st.integers(lo, hi)))
    return v


@st.composite
def turn_detections(draw) -> pb.TurnDetection:
    t = pb.TurnDetection(mode=draw(st.integers(0, 4)), eagerness=draw(st.integers(0, 5)))
    if draw(st.booleans()):
        t.max_wait_ms = draw(st.integers(0, 10000))
    return t


@st.composite
def session_configs(draw) -> pb.ClientMessage:
    cfg = pb.SessionConfig(session_id=draw(session_ids), voice=draw(st.sampled_from(VOICES)))
    if draw(st.booleans()):
        cfg.input_format.CopyFrom(draw(audio_formats()))
    if draw(st.booleans()):
        cfg.output_format.CopyFrom(draw(audio_formats()))
    if draw(st.booleans()):
        cfg.vad.CopyFrom(draw(vad_settings()))
    if draw(st.booleans()):
        cfg.barge_in = draw(st.booleans())
    if draw(st.booleans()):
        cfg.turn_detection.CopyFrom(draw(turn_detections()))
    return pb.ClientMessage(config=cfg)


def _tone(n_samples: int, amp: int) -> bytes:
    t = np.arange(n_samples)
    return (amp * np.sin(2 * np.pi * 180 * t / 16000) * (1 + 0.5 * np.sin(t / 400))).astype("<i2").tobytes()


audio_payloads = st.one_of(
    st.binary(max_size=4000),  # arbitrary bytes, odd lengths included
    st.integers(0, 3200).map(lambda n: b"\0\0" * n),  # silence, up to 200 ms at 16 kHz
    st.tuples(st.integers(1, 3200), st.integers(0, 32767)).map(lambda a: _tone(*a)),  # voiced
    st.integers(3201, 10200).map(lambda n: b"\x01\x02" * n),  # too long a chunk (a message under 20480 bytes)
)

audio_messages = audio_payloads.map(lambda b: pb.ClientMessage(audio=pb.AudioChunk(audio=b)))

control_messages = st.builds(
    lambda t, v: pb.ClientMessage(control=pb.Control(type=t, voice=v)),
    st.sampled_from(CONTROL_TYPES),
    st.sampled_from(VOICES),
)

any_message = st.one_of(
    audio_messages, audio_messages, audio_messages, control_messages, session_configs(), st.just(pb.ClientMessage())
)


@st.composite
def message_sequences(draw, max_size: int = 12) -> list[pb.ClientMessage]:
    """Usually a config first (so that the rest is reached), then anything."""
    first = [draw(session_configs())] if draw(st.integers(0, 9)) < 8 else []
    return first + draw(st.lists(any_message, max_size=max_size))


@st.composite
def valid_formats(draw) -> pb.AudioFormat:
    return draw(
        st.sampled_from(
            [
                pb.AudioFormat(encoding=pb.PCM16, sample_rate_hz=r)
                for r in (8000, 16000, 24000, 48000)
            ]
            + [pb.AudioFormat(encoding=e, sample_rate_hz=8000) for e in (pb.MULAW, pb.ALAW)]
        )
    )


@st.composite
def audio_calls(draw) -> list[pb.ClientMessage]:
    """A valid config, then raw audio bytes in chunks of any size."""
    fmt = draw(valid_formats())
    cfg = pb.ClientMessage(config=pb.SessionConfig(input_format=fmt, output_format=fmt))
    chunks = draw(st.lists(audio_payloads, min_size=1, max_size=20))
    return [cfg, *(pb.ClientMessage(audio=pb.AudioChunk(audio=c)) for c in chunks)]
