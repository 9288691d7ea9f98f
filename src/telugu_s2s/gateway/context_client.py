"""Client of the context service (ContextStore). Converts to the gateway's dataclasses.

Every call takes the caller's tenant explicitly, so that authentication can later set it
in one place (the servicer) and it reaches every context call.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import grpc
import numpy as np
from grpc_health.v1 import health_pb2, health_pb2_grpc

from telugu_s2s.common import codes as codes_mod
from telugu_s2s.gateway.channels import channel_options
from telugu_s2s.gateway.errors import DownstreamError, translate_rpc_error
from telugu_s2s.security import logctx
from telugu_s2s.v1 import common_pb2, context_pb2, context_pb2_grpc

SERVICE = "context"


@dataclass(frozen=True)
class Latency:
    """Latency breakdown of one reply, milliseconds (common.proto Latency)."""

    response_latency_ms: float = 0.0
    voice_to_voice_ms: float = 0.0
    encode_flush_ms: float = 0.0
    context_fetch_ms: float = 0.0
    first_frame_ms: float = 0.0
    first_decode_ms: float = 0.0

    def to_proto(self) -> common_pb2.Latency:
        return common_pb2.Latency(**self.__dict__)

    @classmethod
    def from_proto(cls, msg: common_pb2.Latency) -> Latency:
        return cls(
            response_latency_ms=msg.response_latency_ms,
            voice_to_voice_ms=msg.voice_to_voice_ms,
            encode_flush_ms=msg.encode_flush_ms,
            context_fetch_ms=msg.context_fetch_ms,
            first_frame_ms=msg.first_frame_ms,
            first_decode_ms=msg.first_decode_ms,
        )


@dataclass(frozen=True)
class SessionRecord:
    session_id: str
    tenant: str
    voice: str
    turn_count: int
    total_turns: int = 0
    created_at_ns: int = 0
    updated_at_ns: int = 0


@dataclass(frozen=True)
class TurnRecord:
    turn_id: str
    user_codes: np.ndarray  # [K, T]
    reply_codes: np.ndarray  # [K, R], as played
    interrupted: bool
    played_ms: int
    voice: str
    latency: Latency = field(default_factory=Latency)


def _session(msg: context_pb2.SessionRecord) -> SessionRecord:
    return SessionRecord(
        session_id=msg.session_id,
        tenant=msg.tenant,
        voice=msg.voice,
        turn_count=int(msg.turn_count),
        total_turns=int(msg.total_turns),
        created_at_ns=msg.created_at.ToNanoseconds() if msg.HasField("created_at") else 0,
        updated_at_ns=msg.updated_at.ToNanoseconds() if msg.HasField("updated_at") else 0,
    )


def _turn(msg: context_pb2.Turn) -> TurnRecord:
    return TurnRecord(
        turn_id=msg.turn_id,
        user_codes=codes_mod.from_proto(msg.user_codes),
        reply_codes=codes_mod.from_proto(msg.reply_codes),
        interrupted=msg.interrupted,
        played_ms=int(msg.played_ms),
        voice=msg.voice,
        latency=Latency.from_proto(msg.latency),
    )


class ContextClient:
    def __init__(self, target: str, timeout_s: float = 2.0, channel: grpc.aio.Channel | None = None) -> None:
        self.target = target
        self.timeout_s = timeout_s
        self._channel = channel or grpc.aio.insecure_channel(target, options=channel_options())
        self._stub = context_pb2_grpc.ContextStoreStub(self._channel)
        self._health = health_pb2_grpc.HealthStub(self._channel)

    async def _call(self, method, request):
        try:
            return await method(request, timeout=self.timeout_s, metadata=logctx.outgoing_metadata())
        except grpc.RpcError as exc:
            raise translate_rpc_error(exc, SERVICE, self.target) from exc

    async def healthy(self) -> bool:
        try:
            resp = await self._health.Check(health_pb2.HealthCheckRequest(service=""), timeout=self.timeout_s)
        except grpc.RpcError:
            return False
        return resp.status == health_pb2.HealthCheckResponse.SERVING

    async def create_session(self, voice: str, tenant: str) -> SessionRecord:
        msg = await self._call(self._stub.CreateSession, context_pb2.CreateSessionRequest(voice=voice, tenant=tenant))
        return _session(msg)

    async def get_session(self, session_id: str, tenant: str) -> SessionRecord:
        msg = await self._call(self._stub.GetSession, context_pb2.SessionRef(session_id=session_id, tenant=tenant))
        return _session(msg)

    async def delete_session(self, session_id: str, tenant: str) -> bool:
        msg = await self._call(self._stub.DeleteSession, context_pb2.SessionRef(session_id=session_id, tenant=tenant))
        return bool(msg.deleted)

    async def set_voice(self, session_id: str, tenant: str, voice: str) -> SessionRecord:
        req = context_pb2.SetVoiceRequest(
            session=context_pb2.SessionRef(session_id=session_id, tenant=tenant), voice=voice
        )
        return _session(await self._call(self._stub.SetVoice, req))

    async def append_turn(self, session_id: str, tenant: str, turn: TurnRecord) -> int:
        """Store one turn; return the number of turns remembered after it."""
        req = context_pb2.AppendTurnRequest(
            session=context_pb2.SessionRef(session_id=session_id, tenant=tenant),
            turn=context_pb2.Turn(
                turn_id=turn.turn_id,
                user_codes=codes_mod.to_proto(turn.user_codes),
                reply_codes=codes_mod.to_proto(turn.reply_codes),
                interrupted=turn.interrupted,
                played_ms=turn.played_ms,
                voice=turn.voice,
                latency=turn.latency.to_proto(),
            ),
        )
        msg = await self._call(self._stub.AppendTurn, req)
        return int(msg.turn_count)

    async def get_context(self, session_id: str, tenant: str, max_turns: int) -> tuple[SessionRecord, list[TurnRecord]]:
        """The session and its newest `max_turns` turns, oldest first."""
        req = context_pb2.GetContextRequest(
            session=context_pb2.SessionRef(session_id=session_id, tenant=tenant), max_turns=max_turns
        )
        msg = await self._call(self._stub.GetContext, req)
        try:
            turns = [_turn(t) for t in msg.turns]
        except codes_mod.CodesError as exc:
            raise DownstreamError(SERVICE, None, f"stored turn has bad codes: {exc}") from exc
        return _session(msg.session), turns

    async def close(self) -> None:
        await self._channel.close()
