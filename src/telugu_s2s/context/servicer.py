"""gRPC edge of the context service: pb2 messages <-> store records, errors -> statuses.

Generated types stop here. A turn is validated (code block shapes, voice), stripped of
the server-set fields and serialized; the store keeps those bytes opaque and hands them
back with the index and time it assigned. `created_at` is always the store's; `turn_id` is
the gateway's id for the reply when it sent one (so logs and the caller's `ResponseDone`
name the same turn), otherwise the turn's 1-based index in the session.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

import grpc
from google.protobuf.message import DecodeError
from google.protobuf.timestamp_pb2 import Timestamp

from telugu_s2s.common.codes import CodesError, from_proto
from telugu_s2s.common.voices import DEFAULT_VOICE, UnknownVoiceError, get_voice
from telugu_s2s.context import metrics
from telugu_s2s.context.store import (
    InvalidSessionId,
    InvalidTenant,
    SessionInfo,
    SessionKey,
    SessionNotFound,
    SessionTooLarge,
    Store,
    StoredTurn,
    StoreUnavailable,
    TurnTooLarge,
)
from telugu_s2s.v1 import common_pb2, context_pb2, context_pb2_grpc

log = logging.getLogger(__name__)

SERVICE_NAME = context_pb2.DESCRIPTOR.services_by_name["ContextStore"].full_name


class BadRequest(Exception):
    pass


def _voice(voice: str, *, default: str | None = None) -> str:
    if not voice.strip() and default is not None:
        return default
    try:
        return get_voice(voice).id
    except UnknownVoiceError as exc:
        raise BadRequest(str(exc)) from None


def _key(ref: context_pb2.SessionRef) -> SessionKey:
    return SessionKey(session_id=ref.session_id, tenant=ref.tenant)


def _ts(ms: int) -> Timestamp:
    ts = Timestamp()
    ts.FromMilliseconds(ms)
    return ts


def session_record(info: SessionInfo) -> context_pb2.SessionRecord:
    return context_pb2.SessionRecord(
        session_id=info.session_id,
        tenant=info.tenant,
        voice=info.voice,
        turn_count=info.turn_count,
        total_turns=info.total_turns,
        created_at=_ts(info.created_ms),
        updated_at=_ts(info.updated_ms),
    )


MAX_TURN_ID_LEN = 64


def encode_turn(turn: context_pb2.Turn) -> bytes:
    """Validate a client's turn and serialize it without the server-set fields."""
    for name in ("user_codes", "reply_codes"):
        codes: common_pb2.Codes = getattr(turn, name)
        try:
            from_proto(codes)
        except CodesError as exc:
            raise BadRequest(f"turn.{name}: {exc}") from None
    if len(turn.turn_id) > MAX_TURN_ID_LEN or not turn.turn_id.isprintable():
        raise BadRequest(f"turn.turn_id must be at most {MAX_TURN_ID_LEN} printable characters")
    clean = context_pb2.Turn()
    clean.CopyFrom(turn)
    clean.ClearField("created_at")
    if clean.voice:
        clean.voice = _voice(clean.voice)
    return clean.SerializeToString(deterministic=True)


def decode_turn(stored: StoredTurn) -> context_pb2.Turn:
    turn = context_pb2.Turn()
    try:
        turn.ParseFromString(stored.payload)
    except DecodeError:
        # Written by something else under our key prefix; say so instead of failing the call.
        log.error("stored turn %d is not a Turn message; returned empty", stored.index)
    if not turn.turn_id:
        turn.turn_id = str(stored.index)
    turn.created_at.CopyFrom(_ts(stored.created_ms))
    return turn


_STATUS: list[tuple[type[BaseException], grpc.StatusCode]] = [
    (BadRequest, grpc.StatusCode.INVALID_ARGUMENT),
    (InvalidSessionId, grpc.StatusCode.INVALID_ARGUMENT),
    (InvalidTenant, grpc.StatusCode.INVALID_ARGUMENT),
    (TurnTooLarge, grpc.StatusCode.INVALID_ARGUMENT),
    (SessionNotFound, grpc.StatusCode.NOT_FOUND),
    (SessionTooLarge, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (StoreUnavailable, grpc.StatusCode.UNAVAILABLE),
]


class ContextServicer(context_pb2_grpc.ContextStoreServicer):
    def __init__(self, store: Store, on_unavailable: Callable[[], None] | None = None) -> None:
        self.store = store
        self._on_unavailable = on_unavailable

    async def _run(self, method: str, context: grpc.aio.ServicerContext, fn):
        start = time.perf_counter()
        code = grpc.StatusCode.OK
        try:
            return await fn()
        except Exception as exc:
            message = str(exc)
            for kind, status in _STATUS:
                if isinstance(exc, kind):
                    code = status
                    break
            else:
                code = grpc.StatusCode.INTERNAL
                log.exception("%s failed", method)
                message = f"internal error in {method}; see the context service log"
            if code is grpc.StatusCode.UNAVAILABLE:
                log.debug("%s: %s", method, message)
            if code is grpc.StatusCode.UNAVAILABLE and self._on_unavailable is not None:
                self._on_unavailable()
        finally:
            metrics.RPC_SECONDS.labels(method).observe(time.perf_counter() - start)
            metrics.RPCS.labels(method, code.name).inc()
        await context.abort(code, message)

    async def CreateSession(self, request, context):
        async def run():
            voice = _voice(request.voice, default=DEFAULT_VOICE)
            return session_record(await self.store.create_session(request.tenant, voice))

        return await self._run("CreateSession", context, run)

    async def GetSession(self, request, context):
        async def run():
            return session_record(await self.store.get_session(_key(request)))

        return await self._run("GetSession", context, run)

    async def DeleteSession(self, request, context):
        async def run():
            deleted = await self.store.delete_session(_key(request))
            return common_pb2.DeleteSessionResponse(deleted=deleted)

        return await self._run("DeleteSession", context, run)

    async def SetVoice(self, request, context):
        async def run():
            key = _key(request.session)
            key.validate()
            voice = _voice(request.voice)
            return session_record(await self.store.set_voice(key, voice))

        return await self._run("SetVoice", context, run)

    async def AppendTurn(self, request, context):
        async def run():
            key = _key(request.session)
            key.validate()
            if not request.HasField("turn"):
                raise BadRequest("AppendTurnRequest.turn is missing")
            result = await self.store.append_turn(key, encode_turn(request.turn))
            return context_pb2.AppendTurnResponse(turn_count=result.turn_count, turn_index=result.turn_index)

        return await self._run("AppendTurn", context, run)

    async def GetContext(self, request, context):
        async def run():
            ctx = await self.store.get_context(_key(request.session), request.max_turns)
            return context_pb2.ContextResponse(
                session=session_record(ctx.session),
                turns=[decode_turn(t) for t in ctx.turns],
            )

        return await self._run("GetContext", context, run)
