"""A refused streaming call reads the caller's queued writes first, so its status is not lost."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from telugu_s2s.common import refusal
from telugu_s2s.gateway.auth import AuthInterceptor, Authenticator


class Aborted(Exception):
    pass


class FakeContext:
    """Records the order of reads and the abort. `script` is what read() returns, one entry per
    call as (seconds it waits, message); past its end read() blocks (a caller gone silent)."""

    def __init__(self, script=((0.0, object()), (0.0, grpc.aio.EOF))) -> None:
        self.script = list(script)
        self.log: list[str] = []

    async def read(self):
        self.log.append("read")
        if not self.script:
            await asyncio.Event().wait()
        delay, msg = self.script.pop(0)
        await asyncio.sleep(delay)
        return msg

    async def abort(self, code, message):
        self.log.append(f"abort {code.name}")
        raise Aborted(message)

    def invocation_metadata(self):
        return ()

    async def send_initial_metadata(self, md):
        pass


async def test_refuse_reads_a_backlog_to_its_end_then_ends_with_the_status():
    ctx = FakeContext([(0.0, object())] * 5 + [(0.0, grpc.aio.EOF)])
    with pytest.raises(Aborted, match="full"):
        await refusal.refuse(ctx, grpc.StatusCode.RESOURCE_EXHAUSTED, "full")
    assert ctx.log == ["read"] * 6 + ["abort RESOURCE_EXHAUSTED"]


async def test_refuse_ends_right_after_a_write_of_a_caller_that_sends_at_its_own_pace(monkeypatch):
    monkeypatch.setattr(refusal, "REFUSE_READ_S", 0.05)
    ctx = FakeContext([(0.0, object()), (0.03, object()), (0.03, object()), (0.03, object()), (0.03, object())])
    with pytest.raises(Aborted):
        await refusal.refuse(ctx, grpc.StatusCode.RESOURCE_EXHAUSTED, "full")
    # reads at 0, 30 and 60 ms: the one that arrives after the 50 ms is the last
    assert ctx.log == ["read"] * 3 + ["abort RESOURCE_EXHAUSTED"]


async def test_refuse_does_not_wait_long_for_a_silent_caller(monkeypatch):
    monkeypatch.setattr(refusal, "REFUSE_READ_S", 0.05)
    monkeypatch.setattr(refusal, "LAST_READ_S", 0.05)
    ctx = FakeContext([])
    with pytest.raises(Aborted):
        await asyncio.wait_for(refusal.refuse(ctx, grpc.StatusCode.UNAVAILABLE, "draining"), 2)
    assert ctx.log == ["read", "abort UNAVAILABLE"]


async def test_a_caller_with_writes_in_flight_gets_the_status_not_internal():
    """Real gRPC: the server refuses after 20 messages while the client writes 120 as fast as
    it can. Without the reads in refuse() nine calls in ten end INTERNAL "Internal error from Core"."""
    from telugu_s2s.v1 import conversation_pb2 as pb
    from telugu_s2s.v1 import conversation_pb2_grpc as pb_grpc

    class Refuser(pb_grpc.ConversationServicer):
        async def Converse(self, request_iterator, context):
            for _ in range(20):
                await context.read()
            await refusal.refuse(context, grpc.StatusCode.RESOURCE_EXHAUSTED, "a limit")

    server = grpc.aio.server()
    pb_grpc.add_ConversationServicer_to_server(Refuser(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    codes = []
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = pb_grpc.ConversationStub(channel)
            for _ in range(20):
                call = stub.Converse()
                chunk = pb.ClientMessage(audio=pb.AudioChunk(audio=bytes(640)))
                try:
                    for _ in range(120):
                        await call.write(chunk)
                    await call.done_writing()
                except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
                    pass
                codes.append(await call.code())
    finally:
        await server.stop(None)
    assert codes == [grpc.StatusCode.RESOURCE_EXHAUSTED] * 20, codes


@pytest.mark.parametrize(
    "reads, expected", [(True, ["read", "read", "abort UNAUTHENTICATED"]), (False, ["abort UNAUTHENTICATED"])]
)
async def test_interceptor_reads_a_streaming_callers_first_message_before_refusing(reads, expected):
    interceptor = AuthInterceptor(Authenticator({}))
    ctx = FakeContext()
    with pytest.raises(Aborted):
        await interceptor._enter(ctx, "Converse", stream=True, reads=reads)
    assert ctx.log == expected
