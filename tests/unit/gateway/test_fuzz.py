"""Property-based fuzzing of Converse against the in-process gateway (fakes downstream).

Properties, for any sequence of ClientMessages and any audio bytes:
- the call ends (no hang) with a defined status (never INTERNAL / UNKNOWN);
- the gateway cleans up after it (no active call left) and stays SERVING.
"""

from __future__ import annotations

import asyncio

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from .conftest import start_stack, stop_stack
from .fakes import wait_for
from .fuzz_strategies import CLIENT_WRITE_RACE, DEFINED_ENDINGS, audio_calls, message_sequences, server_codes

CALL_TIMEOUT_S = 20.0  # a liveness bound: far above any legitimate call here
FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)


@pytest.fixture
def fuzz_stack():
    """One gateway (+ fakes) on a private event loop, shared by every example of a test."""
    loop = asyncio.new_event_loop()
    stack = loop.run_until_complete(start_stack(cfg_kw={"idle_timeout_s": 5.0}))
    try:
        yield loop, stack
    finally:
        loop.run_until_complete(stop_stack(stack))
        loop.close()


async def run_call(stack, messages, cancel_after: int | None) -> tuple[grpc.StatusCode, str]:
    call = stack.stub.Converse()
    status: list[tuple[grpc.StatusCode, str]] = []

    async def read() -> None:
        # The status as the stream delivered it. (call.code() afterwards can read INTERNAL
        # "Internal error from Core" when this client wrote after the server had ended the
        # call: grpc.aio replaces the status on a failed write.)
        try:
            async for _ in call:
                pass
        except grpc.aio.AioRpcError as exc:
            status.append((exc.code(), exc.details() or ""))
        else:
            status.append((grpc.StatusCode.OK, ""))

    reader = asyncio.create_task(read())
    try:
        for i, m in enumerate(messages):
            if cancel_after is not None and i == cancel_after:
                call.cancel()
                break
            await call.write(m)
        else:
            await call.done_writing()
    except (grpc.aio.AioRpcError, asyncio.InvalidStateError, grpc.aio.UsageError):
        pass  # the server ended the call while we were writing
    try:
        await asyncio.wait_for(reader, CALL_TIMEOUT_S)
    except asyncio.CancelledError:
        return grpc.StatusCode.CANCELLED, "cancelled by the client"
    return status[0]


async def check_healthy(stack) -> None:
    await wait_for(lambda: stack.gateway.servicer.active_calls == 0, timeout=CALL_TIMEOUT_S, what="call cleanup")
    resp = await health_pb2_grpc.HealthStub(stack.channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
    assert resp.status == health_pb2.HealthCheckResponse.SERVING
    assert stack.generator.active == 0


def test_any_message_sequence_ends_with_a_defined_status(fuzz_stack):
    loop, stack = fuzz_stack

    @FUZZ
    @given(messages=message_sequences(), cancel=st.one_of(st.none(), st.integers(0, 12)))
    def prop(messages, cancel):
        before = server_codes()
        code, details = loop.run_until_complete(run_call(stack, messages, cancel))
        loop.run_until_complete(check_healthy(stack))
        ended = {k: v - before.get(k, 0) for k, v in server_codes().items() if v != before.get(k, 0)}
        assert set(ended) <= {c.name for c in DEFINED_ENDINGS}, (ended, messages)
        if (code, details) != CLIENT_WRITE_RACE:
            assert code in DEFINED_ENDINGS, (code, details, messages)
            if code is not grpc.StatusCode.OK and code is not grpc.StatusCode.CANCELLED:
                assert details, "an error status without a message"

    prop()


def test_any_audio_bytes_end_with_a_defined_status(fuzz_stack):
    loop, stack = fuzz_stack

    @FUZZ
    @given(messages=audio_calls())
    def prop(messages):
        before = server_codes()
        code, details = loop.run_until_complete(run_call(stack, messages, None))
        loop.run_until_complete(check_healthy(stack))
        ended = {k for k, v in server_codes().items() if v != before.get(k, 0)}
        assert ended <= {"OK", "INVALID_ARGUMENT"}, ended
        if (code, details) != CLIENT_WRITE_RACE:
            assert code in (grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT), (code, details)
        if code is grpc.StatusCode.INVALID_ARGUMENT:
            assert "chunk" in details or "byte" in details or "sample" in details, details

    prop()
