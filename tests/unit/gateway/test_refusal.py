"""A streaming call refused before the caller wrote anything reads that write first."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from telugu_s2s.gateway import refusal
from telugu_s2s.gateway.auth import AuthInterceptor, Authenticator


class Aborted(Exception):
    pass


class FakeContext:
    """Records the order of reads and the abort; `first` is what read() returns (or None: it blocks)."""

    def __init__(self, first=object()) -> None:
        self.first = first
        self.log: list[str] = []

    async def read(self):
        self.log.append("read")
        if self.first is None:
            await asyncio.Event().wait()
        return self.first

    async def abort(self, code, message):
        self.log.append(f"abort {code.name}")
        raise Aborted(message)

    def invocation_metadata(self):
        return ()

    async def send_initial_metadata(self, md):
        pass


async def test_refuse_reads_the_first_message_then_ends_with_the_status():
    ctx = FakeContext()
    with pytest.raises(Aborted, match="full"):
        await refusal.refuse(ctx, grpc.StatusCode.RESOURCE_EXHAUSTED, "full")
    assert ctx.log == ["read", "abort RESOURCE_EXHAUSTED"]


async def test_refuse_does_not_wait_long_for_a_silent_caller(monkeypatch):
    monkeypatch.setattr(refusal, "REFUSE_READ_S", 0.05)
    ctx = FakeContext(first=None)
    with pytest.raises(Aborted):
        await asyncio.wait_for(refusal.refuse(ctx, grpc.StatusCode.UNAVAILABLE, "draining"), 2)
    assert ctx.log == ["read", "abort UNAVAILABLE"]


@pytest.mark.parametrize(
    "reads, expected", [(True, ["read", "abort UNAUTHENTICATED"]), (False, ["abort UNAUTHENTICATED"])]
)
async def test_interceptor_reads_a_streaming_callers_first_message_before_refusing(reads, expected):
    interceptor = AuthInterceptor(Authenticator({}))
    ctx = FakeContext()
    with pytest.raises(Aborted):
        await interceptor._enter(ctx, "Converse", stream=True, reads=reads)
    assert ctx.log == expected
