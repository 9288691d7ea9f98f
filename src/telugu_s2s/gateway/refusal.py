"""Ending a streaming call that is refused before the caller has sent anything."""

from __future__ import annotations

import asyncio

import grpc

# How long a refused call waits for the caller's first message before it ends.
REFUSE_READ_S = 1.0


async def refuse(context: grpc.aio.ServicerContext, code: grpc.StatusCode, message: str) -> None:
    """End a request-streaming call with `code`, after reading the caller's first message.

    A status that overtakes a client write still in flight makes grpc clients report
    INTERNAL "Internal error from Core" instead of the status, so a caller refused at once
    (no key, a limit reached, draining) would never learn why. Reading its first write
    (at most REFUSE_READ_S) lets the status arrive after it. Always raises, like abort()."""
    try:
        await asyncio.wait_for(context.read(), REFUSE_READ_S)
    except (TimeoutError, grpc.RpcError, asyncio.InvalidStateError):
        pass
    await context.abort(code, message)
