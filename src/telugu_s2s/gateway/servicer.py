"""The `Conversation` servicer: the edge where pb2 messages become the gateway's own types."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable
from typing import Any

import grpc
from google.protobuf.message import Message

from telugu_s2s.common.audio import G711_RATE, AudioFormat, AudioFormatError, Encoding
from telugu_s2s.common.refusal import read_last_messages, refuse
from telugu_s2s.common.voices import VOICES, UnknownVoiceError, get_voice
from telugu_s2s.gateway import metrics
from telugu_s2s.gateway.auth import current_principal
from telugu_s2s.gateway.config import Config
from telugu_s2s.gateway.errors import CallError, DownstreamError, DownstreamUnavailable, SessionNotFound
from telugu_s2s.gateway.events import (
    AudioInput,
    CallSettings,
    ClientInput,
    ControlInput,
    ControlType,
    ErrorEvent,
    ResponseAudioEvent,
    ResponseDoneEvent,
    ResponseInterruptedEvent,
    ResponseStartedEvent,
    ServerEvent,
    SessionStartedEvent,
    SpeechStartedEvent,
    SpeechStoppedEvent,
)
from telugu_s2s.gateway.lifecycle import CallLifecycle
from telugu_s2s.gateway.session import CallDeps
from telugu_s2s.gateway.vad import TurnSettings, VadSettings
from telugu_s2s.v1 import common_pb2, conversation_pb2_grpc
from telugu_s2s.v1 import conversation_pb2 as pb

log = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["Conversation"].full_name
SESSION_ID_RE = re.compile(r"[0-9a-f]{32}")

_ENCODINGS = {
    pb.AUDIO_ENCODING_UNSPECIFIED: Encoding.PCM16,
    pb.PCM16: Encoding.PCM16,
    pb.MULAW: Encoding.MULAW,
    pb.ALAW: Encoding.ALAW,
}
_PB_ENCODINGS = {Encoding.PCM16: pb.PCM16, Encoding.MULAW: pb.MULAW, Encoding.ALAW: pb.ALAW}
_CONTROLS = {
    pb.Control.COMMIT_TURN: ControlType.COMMIT_TURN,
    pb.Control.INTERRUPT: ControlType.INTERRUPT,
    pb.Control.END_OF_INPUT: ControlType.END_OF_INPUT,
    pb.Control.SET_VOICE: ControlType.SET_VOICE,
}


def tenant_of(context: grpc.aio.ServicerContext) -> str:
    """The caller's tenant, set by the API-key interceptor (gateway/auth); "" in dev mode."""
    return current_principal().tenant


def _invalid(message: str) -> CallError:
    return CallError(grpc.StatusCode.INVALID_ARGUMENT, message)


def check_session_id(session_id: str) -> str:
    if not SESSION_ID_RE.fullmatch(session_id):
        raise _invalid(
            f"malformed session_id {session_id[:64]!r}: expected the 32 lowercase hex characters "
            "returned in SessionStarted.session_id"
        )
    return session_id


def parse_format(msg: pb.AudioFormat, name: str) -> AudioFormat:
    encoding = _ENCODINGS.get(msg.encoding)
    if encoding is None:
        raise _invalid(f"{name}.encoding {msg.encoding} is not supported; use PCM16, MULAW or ALAW")
    rate = msg.sample_rate_hz or (16000 if encoding is Encoding.PCM16 else G711_RATE)
    try:
        return AudioFormat(encoding, rate).validate()
    except AudioFormatError as exc:
        raise _invalid(f"{name}: {exc}") from exc


def parse_session_config(msg: pb.SessionConfig) -> CallSettings:
    session_id = check_session_id(msg.session_id) if msg.session_id else ""
    voice = ""
    if msg.voice:
        try:
            voice = get_voice(msg.voice).id
        except UnknownVoiceError as exc:
            raise _invalid(str(exc)) from exc
    input_format = parse_format(msg.input_format, "input_format")
    output_format = parse_format(msg.output_format, "output_format") if msg.HasField("output_format") else input_format
    defaults = VadSettings()
    v = msg.vad
    vad = VadSettings(
        aggressiveness=v.aggressiveness if v.HasField("aggressiveness") else defaults.aggressiveness,
        prefix_padding_ms=v.prefix_padding_ms if v.HasField("prefix_padding_ms") else defaults.prefix_padding_ms,
        silence_duration_ms=v.silence_duration_ms
        if v.HasField("silence_duration_ms")
        else defaults.silence_duration_ms,
        min_speech_ms=v.min_speech_ms if v.HasField("min_speech_ms") else defaults.min_speech_ms,
    )
    turn = parse_turn_detection(msg.turn_detection)
    try:
        vad.validate()
        turn.validate()
    except ValueError as exc:
        raise _invalid(str(exc)) from exc
    return CallSettings(
        session_id=session_id,
        voice=voice,
        input_format=input_format,
        output_format=output_format,
        vad=vad,
        barge_in=msg.barge_in if msg.HasField("barge_in") else True,
        turn=turn,
    )


_TURN_MODES = {pb.TurnDetection.SILENCE: "silence", pb.TurnDetection.TURN_MODEL: "turn_model"}
_EAGERNESS = {pb.TurnDetection.LOW: "low", pb.TurnDetection.MEDIUM: "medium", pb.TurnDetection.HIGH: "high"}


def parse_turn_detection(msg: pb.TurnDetection) -> TurnSettings:
    defaults = TurnSettings()
    if msg.mode and msg.mode not in _TURN_MODES:
        raise _invalid(f"turn_detection.mode {msg.mode} is not known; use SILENCE or TURN_MODEL")
    if msg.eagerness and msg.eagerness not in _EAGERNESS:
        raise _invalid(f"turn_detection.eagerness {msg.eagerness} is not known; use LOW, MEDIUM or HIGH")
    return TurnSettings(
        mode=_TURN_MODES.get(msg.mode, ""),
        eagerness=_EAGERNESS.get(msg.eagerness, defaults.eagerness),
        max_wait_ms=msg.max_wait_ms if msg.HasField("max_wait_ms") else defaults.max_wait_ms,
    )


def check_size(msg: pb.ClientMessage, limit: int) -> None:
    size = msg.ByteSize()
    if size > limit:
        raise CallError(
            grpc.StatusCode.RESOURCE_EXHAUSTED,
            f"a message of {size} bytes is over this gateway's limit of {limit} bytes; send audio in chunks "
            "of 10-200 ms (200 ms of PCM16 at 48 kHz is 19200 bytes)",
        )


def parse_client_message(msg: pb.ClientMessage) -> ClientInput:
    kind = msg.WhichOneof("message")
    if kind == "config":
        return parse_session_config(msg.config)
    if kind == "audio":
        return AudioInput(msg.audio.audio)
    if kind == "control":
        ctype = _CONTROLS.get(msg.control.type)
        if ctype is None:
            raise _invalid(
                f"Control.type {msg.control.type} is not supported; use COMMIT_TURN, INTERRUPT, END_OF_INPUT or SET_VOICE"
            )
        if ctype is ControlType.SET_VOICE and not msg.control.voice:
            raise _invalid("SET_VOICE needs Control.voice (arjun, ravi, priya or lakshmi)")
        return ControlInput(ctype, msg.control.voice)
    raise _invalid("empty ClientMessage: set one of config, audio or control")


def _format_pb(fmt: AudioFormat) -> pb.AudioFormat:
    return pb.AudioFormat(encoding=_PB_ENCODINGS[fmt.encoding], sample_rate_hz=fmt.sample_rate_hz)


# Each gateway event -> (its field of ServerMessage, its message). One row per event type.
_EVENT_MESSAGES: dict[type, tuple[str, Callable[[Any], Message]]] = {
    ResponseAudioEvent: ("response_audio", lambda ev: pb.ResponseAudio(turn_id=ev.turn_id, seq=ev.seq, audio=ev.audio)),
    SessionStartedEvent: (
        "session_started",
        lambda ev: pb.SessionStarted(
            session_id=ev.session_id,
            resumed=ev.resumed,
            turns_in_context=ev.turns_in_context,
            voice=ev.voice,
            input_format=_format_pb(ev.input_format),
            output_format=_format_pb(ev.output_format),
            untrained_model=ev.untrained_model,
        ),
    ),
    SpeechStartedEvent: (
        "speech_started",
        lambda ev: pb.SpeechStarted(audio_start_ms=ev.audio_start_ms, decided_at_ms=ev.decided_at_ms),
    ),
    SpeechStoppedEvent: (
        "speech_stopped",
        lambda ev: pb.SpeechStopped(audio_end_ms=ev.audio_end_ms, decided_at_ms=ev.decided_at_ms, reason=ev.reason),
    ),
    ResponseStartedEvent: ("response_started", lambda ev: pb.ResponseStarted(turn_id=ev.turn_id, voice=ev.voice)),
    ResponseDoneEvent: (
        "response_done",
        lambda ev: pb.ResponseDone(
            turn_id=ev.turn_id,
            audio_ms=ev.audio_ms,
            latency=ev.latency.to_proto(),
            turns_in_context=ev.turns_in_context,
        ),
    ),
    ResponseInterruptedEvent: (
        "response_interrupted",
        lambda ev: pb.ResponseInterrupted(turn_id=ev.turn_id, played_ms=ev.played_ms),
    ),
    ErrorEvent: ("error", lambda ev: pb.Error(code=ev.code, message=ev.message, turn_id=ev.turn_id)),
}


def event_to_pb(ev: ServerEvent) -> pb.ServerMessage:
    row = _EVENT_MESSAGES.get(type(ev))
    if row is None:
        raise TypeError(f"unknown event {type(ev).__name__}")
    field, build = row
    return pb.ServerMessage(**{field: build(ev)})


class ConversationServicer(conversation_pb2_grpc.ConversationServicer):
    def __init__(self, cfg: Config, deps: CallDeps) -> None:
        self.cfg = cfg
        self.deps = deps
        self.active_calls = 0
        self._idle = asyncio.Event()
        self._idle.set()

    async def wait_idle(self) -> None:
        """Returns once no call is in progress."""
        await self._idle.wait()

    async def Converse(self, request_iterator, context: grpc.aio.ServicerContext):
        if self.active_calls >= self.cfg.max_calls:
            metrics.CALLS.labels("RESOURCE_EXHAUSTED").inc()
            metrics.ERRORS.labels("RESOURCE_EXHAUSTED").inc()
            await refuse(
                context,
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"this gateway is at its limit of {self.cfg.max_calls} concurrent calls; retry later",
            )
        self.active_calls += 1
        self._idle.clear()
        metrics.ACTIVE_CALLS.inc()
        code = grpc.StatusCode.OK
        failure: CallError | None = None

        async def recv() -> ClientInput | None:
            msg = await context.read()
            if msg is grpc.aio.EOF:
                return None
            check_size(msg, self.cfg.max_message_bytes)
            return parse_client_message(msg)

        async def send(ev: ServerEvent) -> None:
            await context.write(event_to_pb(ev))

        try:
            try:
                await CallLifecycle(self.cfg, self.deps, tenant_of(context), recv, send).run()
            except CallError as exc:
                failure = exc
            except Exception as exc:
                log.exception("call failed")
                failure = CallError(grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}")
            if failure is not None:
                code = failure.code
                metrics.ERRORS.labels(code.name).inc()
                log.info("call ended", extra={"code": code.name, "reason": failure.message})
                # Still a call while the caller's last messages are read (see refuse()): a drain
                # waits for it rather than stopping the server under its status. The abort
                # itself comes after: it can wait on a reply write that a caller who does not
                # read never takes, and must not hold the drain.
                await read_last_messages(context.read)
        except asyncio.CancelledError:
            code = grpc.StatusCode.CANCELLED
            raise
        finally:
            metrics.CALLS.labels(code.name).inc()
            metrics.ACTIVE_CALLS.dec()
            self.active_calls -= 1
            if self.active_calls == 0:
                self._idle.set()
        if failure is not None:
            await context.abort(failure.code, failure.message)

    async def ListVoices(self, request, context):
        return pb.ListVoicesResponse(
            voices=[
                pb.Voice(id=v.id, display_name=v.display_name, gender=v.gender, description=v.description)
                for v in VOICES
            ]
        )

    async def _unary(self, context, fn):
        try:
            return await fn()
        except CallError as exc:
            await context.abort(exc.code, exc.message)
        except SessionNotFound:
            await context.abort(grpc.StatusCode.NOT_FOUND, "session not found (unknown or expired)")
        except DownstreamUnavailable as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"{exc}; retry shortly")
        except DownstreamError as exc:
            await context.abort(grpc.StatusCode.UNAVAILABLE, f"context service error: {exc}")

    async def GetSession(self, request, context):
        async def fn():
            rec = await self.deps.context.get_session(check_session_id(request.session_id), tenant_of(context))
            info = pb.SessionInfo(session_id=rec.session_id, voice=rec.voice, turn_count=rec.turn_count)
            if rec.created_at_ns:
                info.created_at.FromNanoseconds(rec.created_at_ns)
            if rec.updated_at_ns:
                info.updated_at.FromNanoseconds(rec.updated_at_ns)
            return info

        return await self._unary(context, fn)

    async def DeleteSession(self, request, context):
        async def fn():
            deleted = await self.deps.context.delete_session(check_session_id(request.session_id), tenant_of(context))
            if not deleted:
                # Unknown, expired, or another tenant's: the same answer, so ids cannot be probed.
                raise SessionNotFound(request.session_id)
            return common_pb2.DeleteSessionResponse(deleted=deleted)

        return await self._unary(context, fn)
