"""Ending a request-streaming call with an error status the caller can read."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import grpc

# How long a refused call goes on reading the caller's messages before it ends ...
REFUSE_READ_S = 1.0
# ... and then how long it waits for one more message, to end right after it (a caller that
# sends at its own pace is between writes then); none in this time: nothing is in flight.
LAST_READ_S = 0.25


async def refuse(
    context: grpc.aio.ServicerContext,
    code: grpc.StatusCode,
    message: str,
    read: Callable[[], Awaitable[object]] | None = None,
) -> None:
    """End a request-streaming call with `code`, after reading the caller's queued messages.

    A status that overtakes a client write still in flight makes grpc clients report
    INTERNAL "Internal error from Core" instead of the status, so the caller would never learn
    why (no key, a limit reached, draining, a bad message). A caller that sends faster than real
    time (a file, a backlog) has writes in flight until it half-closes, so this reads to the end
    of input, for up to REFUSE_READ_S; a caller that sends at its own pace is still sending
    then, and the call ends right after its next message arrives, when it is between writes.
    (Timing the gaps between messages instead is not safe: under load a fast writer's messages
    arrive with gaps too.) `read` is how the call's next message is read (default
    `context.read`; grpc.aio.EOF at the end), for a servicer that reads its request iterator
    itself. Always raises, like abort()."""
    await read_last_messages(read or context.read)
    await context.abort(code, message)


async def read_last_messages(read: Callable[[], Awaitable[object]]) -> None:
    """refuse()'s reading, alone (at most REFUSE_READ_S + LAST_READ_S): for a servicer that
    must do something between it and the abort."""
    loop = asyncio.get_running_loop()
    end = loop.time() + REFUSE_READ_S
    while True:
        try:
            msg = await asyncio.wait_for(read(), max(0.0, end - loop.time()) + LAST_READ_S)
        except (TimeoutError, grpc.RpcError, asyncio.InvalidStateError):
            return
        if msg is grpc.aio.EOF or loop.time() >= end:
            return
