"""ContextStore over real gRPC (in-process server on port 0), on both backends."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import grpc
import pytest

from telugu_s2s.common.voices import VOICE_IDS
from telugu_s2s.context.config import Config
from telugu_s2s.context.server import RunningContext, start
from telugu_s2s.v1 import common_pb2, context_pb2, context_pb2_grpc

from tests.support.health import SERVING, await_health

from .conftest import Backend

UNKNOWN = "0123456789abcdef0123456789abcdef"


def cfg(**kw: object) -> Config:
    return Config(host="127.0.0.1", port=0, metrics_port=0, **kw)  # type: ignore[arg-type]


class Client:
    def __init__(self, running: RunningContext) -> None:
        self.running = running
        self.channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
        self.stub = context_pb2_grpc.ContextStoreStub(self.channel)

    async def create(self, voice: str = "priya", tenant: str = "") -> context_pb2.SessionRecord:
        return await self.stub.CreateSession(context_pb2.CreateSessionRequest(voice=voice, tenant=tenant))


@pytest.fixture
async def client(backend: Backend) -> AsyncIterator[Client]:
    store = backend.make(max_turns=10, max_turn_bytes=4096, max_session_bytes=20000)
    running = await start(cfg(), store=store, metrics=False)
    c = Client(running)
    try:
        yield c
    finally:
        await c.channel.close()
        await running.stop()


def turn(n_frames: int = 3, *, interrupted: bool = False, played_ms: int = 0, voice: str = "") -> context_pb2.Turn:
    user = common_pb2.Codes(n_codebooks=2, n_frames=n_frames, values=list(range(2 * n_frames)))
    reply = common_pb2.Codes(n_codebooks=2, n_frames=n_frames + 1, values=[7] * (2 * n_frames + 2))
    return context_pb2.Turn(
        user_codes=user,
        reply_codes=reply,
        interrupted=interrupted,
        played_ms=played_ms,
        voice=voice,
        latency=common_pb2.Latency(response_latency_ms=120.5, context_fetch_ms=1.25),
    )


async def code_of(call) -> tuple[grpc.StatusCode, str]:
    with pytest.raises(grpc.aio.AioRpcError) as info:
        await call
    return info.value.code(), info.value.details() or ""


async def test_health_serving(client: Client) -> None:
    await await_health(client.channel, SERVING, timeout=5)
    await await_health(client.channel, SERVING, service="telugu_s2s.v1.ContextStore", timeout=5)


async def test_session_lifecycle(client: Client) -> None:
    rec = await client.create("Arjun", tenant="acme")
    assert len(rec.session_id) == 32 and rec.voice == "arjun" and rec.tenant == "acme"
    assert rec.created_at.ToMilliseconds() > 0 and rec.created_at == rec.updated_at
    ref = context_pb2.SessionRef(session_id=rec.session_id, tenant="acme")
    assert (await client.stub.GetSession(ref)).session_id == rec.session_id
    rec2 = await client.stub.SetVoice(context_pb2.SetVoiceRequest(session=ref, voice="lakshmi"))
    assert rec2.voice == "lakshmi"
    assert (await client.stub.DeleteSession(ref)).deleted is True
    assert (await client.stub.DeleteSession(ref)).deleted is False
    assert (await code_of(client.stub.GetSession(ref)))[0] == grpc.StatusCode.NOT_FOUND


async def test_empty_voice_is_the_default(client: Client) -> None:
    assert (await client.create("")).voice == "priya"


async def test_turn_without_an_id_is_named_by_its_index(client: Client) -> None:
    rec = await client.create()
    ref = context_pb2.SessionRef(session_id=rec.session_id)
    await client.stub.AppendTurn(context_pb2.AppendTurnRequest(session=ref, turn=turn()))
    ctx = await client.stub.GetContext(context_pb2.GetContextRequest(session=ref))
    assert [t.turn_id for t in ctx.turns] == ["1"]
    bad = turn()
    bad.turn_id = "x" * 65
    code, msg = await code_of(client.stub.AppendTurn(context_pb2.AppendTurnRequest(session=ref, turn=bad)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "turn_id" in msg


async def test_turn_round_trip_with_server_fields(client: Client) -> None:
    rec = await client.create()
    ref = context_pb2.SessionRef(session_id=rec.session_id)
    sent = turn(interrupted=True, played_ms=480, voice="Ravi")
    sent.turn_id = "gateway-chosen"  # kept: it names the reply the caller saw
    resp = await client.stub.AppendTurn(context_pb2.AppendTurnRequest(session=ref, turn=sent))
    assert (resp.turn_count, resp.turn_index) == (1, 1)
    ctx = await client.stub.GetContext(context_pb2.GetContextRequest(session=ref))
    assert ctx.session.turn_count == 1 and ctx.session.total_turns == 1
    (got,) = ctx.turns
    assert got.turn_id == "gateway-chosen"
    assert got.created_at.ToMilliseconds() >= rec.created_at.ToMilliseconds()
    assert got.user_codes == sent.user_codes and got.reply_codes == sent.reply_codes
    assert (got.interrupted, got.played_ms, got.voice) == (True, 480, "ravi")
    assert got.latency == sent.latency


async def test_trim_to_ten_over_grpc(client: Client) -> None:
    ref = context_pb2.SessionRef(session_id=(await client.create()).session_id)
    for i in range(12):
        r = await client.stub.AppendTurn(context_pb2.AppendTurnRequest(session=ref, turn=turn(i + 1)))
        assert r.turn_index == i + 1
    ctx = await client.stub.GetContext(context_pb2.GetContextRequest(session=ref))
    assert [t.turn_id for t in ctx.turns] == [str(i) for i in range(3, 13)]
    assert [t.user_codes.n_frames for t in ctx.turns] == list(range(3, 13))
    newest = await client.stub.GetContext(context_pb2.GetContextRequest(session=ref, max_turns=2))
    assert [t.turn_id for t in newest.turns] == ["11", "12"]


async def test_unknown_voice_lists_valid_voices(client: Client) -> None:
    code, msg = await code_of(client.create("bob"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "bob" in msg and all(v in msg for v in VOICE_IDS)
    ref = context_pb2.SessionRef(session_id=(await client.create()).session_id)
    code, msg = await code_of(client.stub.SetVoice(context_pb2.SetVoiceRequest(session=ref, voice="")))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "arjun" in msg
    code, msg = await code_of(
        client.stub.AppendTurn(context_pb2.AppendTurnRequest(session=ref, turn=turn(voice="zed")))
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "zed" in msg


@pytest.mark.parametrize("session_id", ["", "xyz", UNKNOWN.upper()])
async def test_malformed_id_is_invalid_argument(client: Client, session_id: str) -> None:
    ref = context_pb2.SessionRef(session_id=session_id)
    for call in [
        client.stub.GetSession(ref),
        client.stub.DeleteSession(ref),
        client.stub.SetVoice(context_pb2.SetVoiceRequest(session=ref, voice="ravi")),
        client.stub.AppendTurn(context_pb2.AppendTurnRequest(session=ref, turn=turn())),
        client.stub.GetContext(context_pb2.GetContextRequest(session=ref)),
    ]:
        code, msg = await code_of(call)
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        assert "32 lowercase hex" in msg


async def test_unknown_and_other_tenant_are_not_found(client: Client) -> None:
    rec = await client.create(tenant="acme")
    for ref in [
        context_pb2.SessionRef(session_id=UNKNOWN, tenant="acme"),
        context_pb2.SessionRef(session_id=rec.session_id, tenant="globex"),
        context_pb2.SessionRef(session_id=rec.session_id),
    ]:
        for call in [
            client.stub.GetSession(ref),
            client.stub.SetVoice(context_pb2.SetVoiceRequest(session=ref, voice="ravi")),
            client.stub.AppendTurn(context_pb2.AppendTurnRequest(session=ref, turn=turn())),
            client.stub.GetContext(context_pb2.GetContextRequest(session=ref)),
        ]:
            code, msg = await code_of(call)
            assert code == grpc.StatusCode.NOT_FOUND, msg
            assert ref.session_id in msg
        assert (await client.stub.DeleteSession(ref)).deleted is False
    owner = context_pb2.SessionRef(session_id=rec.session_id, tenant="acme")
    assert (await client.stub.GetSession(owner)).total_turns == 0


async def test_bad_turns(client: Client) -> None:
    ref = context_pb2.SessionRef(session_id=(await client.create()).session_id)
    code, msg = await code_of(client.stub.AppendTurn(context_pb2.AppendTurnRequest(session=ref)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "turn is missing" in msg

    bad = turn()
    bad.user_codes.n_frames = 99
    code, msg = await code_of(client.stub.AppendTurn(context_pb2.AppendTurnRequest(session=ref, turn=bad)))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "user_codes" in msg

    code, msg = await code_of(
        client.stub.AppendTurn(context_pb2.AppendTurnRequest(session=ref, turn=turn(2000)))
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert "limit of 4096 bytes per turn" in msg and "TS2S_CONTEXT_MAX_TURN_BYTES" in msg

    code, msg = await code_of(
        client.stub.CreateSession(context_pb2.CreateSessionRequest(voice="priya", tenant="t" * 200))
    )
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "tenant" in msg
    assert (await client.stub.GetSession(ref)).total_turns == 0


async def test_session_cap_is_resource_exhausted(client: Client) -> None:
    # Each turn(600) is ~3.6 KB; 10 of them would exceed the 20000-byte session cap.
    ref = context_pb2.SessionRef(session_id=(await client.create()).session_id)
    appended = 0
    with pytest.raises(grpc.aio.AioRpcError) as info:
        for _ in range(10):
            await client.stub.AppendTurn(context_pb2.AppendTurnRequest(session=ref, turn=turn(600)))
            appended += 1
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "TS2S_CONTEXT_MAX_SESSION_BYTES" in (info.value.details() or "")
    assert 0 < appended < 10
    assert (await client.stub.GetSession(ref)).total_turns == appended


async def test_concurrent_grpc_appends(client: Client) -> None:
    ref = context_pb2.SessionRef(session_id=(await client.create()).session_id)
    other = Client(client.running)  # a second channel, like a second gateway
    try:
        calls = [
            (client if i % 2 else other).stub.AppendTurn(
                context_pb2.AppendTurnRequest(session=ref, turn=turn(i + 1))
            )
            for i in range(30)
        ]
        results = await asyncio.gather(*calls)
    finally:
        await other.channel.close()
    assert sorted(r.turn_index for r in results) == list(range(1, 31))
    by_index = {r.turn_index: i + 1 for i, r in enumerate(results)}
    ctx = await client.stub.GetContext(context_pb2.GetContextRequest(session=ref))
    assert [int(t.turn_id) for t in ctx.turns] == list(range(21, 31))
    assert [t.user_codes.n_frames for t in ctx.turns] == [by_index[i] for i in range(21, 31)]
