"""Redis going away and coming back: durability (AOF), UNAVAILABLE + health, recovery, auth."""

from __future__ import annotations

import asyncio
from pathlib import Path

import grpc
import pytest

from telugu_s2s.context.config import Config
from telugu_s2s.context.redis_store import RedisStore
from telugu_s2s.context.server import start
from telugu_s2s.context.store import SessionKey, StoreLimits, StoreUnavailable
from telugu_s2s.v1 import context_pb2, context_pb2_grpc

from tests.support.health import NOT_SERVING, SERVING, await_health
from tests.support.redis import RedisFactory

pytestmark = pytest.mark.e2e


@pytest.mark.parametrize("hard", [True, False], ids=["sigkill", "sigterm"])
async def test_restart_with_aof_loses_nothing_acknowledged(redis_server_factory: RedisFactory, hard: bool) -> None:
    server = redis_server_factory(appendonly=True, appendfsync="always")
    store = RedisStore.from_url(server.url, StoreLimits(max_turns=100, max_session_bytes=1 << 20))
    try:
        s = await store.create_session("t", "ravi")
        key = SessionKey(s.session_id, "t")
        acked = await asyncio.gather(*(store.append_turn(key, f"turn-{i}".encode()) for i in range(40)))
        await store.set_voice(key, "priya")
        server.restart(hard=hard)  # SIGKILL = a crash right after the acknowledgements
        ctx = await store.get_context(key)  # the pool reconnects by itself
        assert ctx.session.voice == "priya"
        assert ctx.session.total_turns == 40
        assert sorted(t.index for t in ctx.turns) == sorted(r.turn_index for r in acked)
        assert sorted(t.payload for t in ctx.turns) == sorted(f"turn-{i}".encode() for i in range(40))
        r = await store.append_turn(key, b"after")
        assert r.turn_index == 41
    finally:
        await store.close()


async def test_append_retried_with_the_same_token_is_stored_once(redis_server_factory: RedisFactory) -> None:
    server = redis_server_factory()
    store = RedisStore.from_url(server.url)
    try:
        key = SessionKey((await store.create_session("", "priya")).session_id)
        first = await store._append_with_token(key, b"once", "tok1")
        again = await store._append_with_token(key, b"once", "tok1")
        other = await store._append_with_token(key, b"twice", "tok2")
        assert (first.turn_index, again.turn_index, other.turn_index) == (1, 1, 2)
        assert [t.payload for t in (await store.get_context(key)).turns] == [b"once", b"twice"]
    finally:
        await store.close()


async def test_redis_down_is_unavailable_and_not_serving_then_recovers(
    redis_server_factory: RedisFactory,
) -> None:
    server = redis_server_factory(appendonly=True)
    cfg = Config(
        host="127.0.0.1", port=0, metrics_port=0, redis_url=server.url,
        health_interval_s=0.2, redis_timeout_s=1.0,
    )
    running = await start(cfg, metrics=False)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
    stub = context_pb2_grpc.ContextStoreStub(channel)
    try:
        await await_health(channel, SERVING, timeout=5)
        rec = await stub.CreateSession(context_pb2.CreateSessionRequest(voice="arjun"))
        ref = context_pb2.SessionRef(session_id=rec.session_id)

        server.stop()
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.GetSession(ref)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        assert info.value.details().startswith(
            f"context store unavailable: redis at 127.0.0.1:{server.port} is not reachable"
        )
        with pytest.raises(grpc.aio.AioRpcError) as info:
            await stub.CreateSession(context_pb2.CreateSessionRequest(voice="arjun"))
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE
        await await_health(channel, NOT_SERVING, timeout=10)
        await await_health(channel, NOT_SERVING, service="telugu_s2s.v1.ContextStore", timeout=1)

        server.start().wait_ready()  # same port, same data, no restart of the service
        await await_health(channel, SERVING, timeout=10)
        got = await stub.GetSession(ref)
        assert got.voice == "arjun"
        await stub.AppendTurn(context_pb2.AppendTurnRequest(session=ref, turn=context_pb2.Turn()))
        assert (await stub.GetSession(ref)).total_turns == 1
    finally:
        await channel.close()
        await running.stop()


async def test_service_starts_not_serving_while_redis_is_down(redis_server_factory: RedisFactory) -> None:
    server = redis_server_factory()
    server.stop()
    cfg = Config(host="127.0.0.1", port=0, metrics_port=0, redis_url=server.url, health_interval_s=0.2)
    running = await start(cfg, metrics=False)
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
    try:
        await await_health(channel, NOT_SERVING, timeout=5)
        server.start().wait_ready()
        await await_health(channel, SERVING, timeout=10)
        stub = context_pb2_grpc.ContextStoreStub(channel)
        assert (await stub.CreateSession(context_pb2.CreateSessionRequest(voice="ravi"))).voice == "ravi"
    finally:
        await channel.close()
        await running.stop()


async def test_password_from_file(redis_server_factory: RedisFactory, tmp_path: Path) -> None:
    server = redis_server_factory(password="correct horse")
    secret = tmp_path / "redis-password"
    secret.write_text("correct horse\n")
    cfg = Config.from_env([], env={"TS2S_CONTEXT_REDIS_URL": server.url,
                                   "TS2S_CONTEXT_REDIS_PASSWORD_FILE": str(secret)})
    assert "correct horse" not in repr(cfg)
    store = RedisStore.from_config(cfg, StoreLimits())
    try:
        await store.ping()
        assert (await store.create_session("", "priya")).voice == "priya"
    finally:
        await store.close()

    for password in [None, "wrong"]:
        bad = RedisStore.from_url(server.url, password=password)
        try:
            with pytest.raises(StoreUnavailable) as info:
                await bad.ping()
            assert f"redis at 127.0.0.1:{server.port}" in str(info.value)
            assert "TS2S_CONTEXT_REDIS_PASSWORD" in str(info.value)
        finally:
            await bad.close()
