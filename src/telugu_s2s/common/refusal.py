"""Ending a request-streaming call with an error status the caller can read."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import grpc

# The longest a refused call goes on reading the caller's messages before it ends.
REFUSE_READ_S = 1.0
# A read that waited longer than this found no message queued: the caller writes at its own pace
# and has just finished a write, so the status can go now without overtaking the next one.
QUEUED_S = 0.005


async def refuse(
    context: grpc.aio.ServicerContext,
    code: grpc.StatusCode,
    message: str,
    read: Callable[[], Awaitable[object]] | None = None,
) -> None:
    """End a request-streaming call with `code`, after reading the caller's queued messages.

    A status that overtakes a client write still in flight makes grpc clients report
    INTERNAL "Internal error from Core" instead of the status, so the caller would never learn
    why (no key, a limit reached, draining). A caller that sends faster than real time (a file,
    a backlog) has writes in flight until it half-closes; one that sends at its own pace is
    between writes just after a message arrives. So this reads until the end of input, or until a
    read finds nothing queued, or for at most REFUSE_READ_S, and then ends the call.
    `read` is how the call's next message is read (default `context.read`; grpc.aio.EOF at the
    end), for a servicer that reads its request iterator itself. Always raises, like abort()."""
    read = read or context.read
    loop = asyncio.get_running_loop()
    end = loop.time() + REFUSE_READ_S
    while (left := end - loop.time()) > 0:
        t_read = loop.time()
        try:
            msg = await asyncio.wait_for(read(), left)
        except (TimeoutError, grpc.RpcError, asyncio.InvalidStateError):
            break
        if msg is grpc.aio.EOF or loop.time() - t_read > QUEUED_S:
            break
    await context.abort(code, message)
