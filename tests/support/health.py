"""Wait for a gRPC health status with the standard Watch stream (no sleep polling)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def status_name(status: int) -> str:
    return health_pb2.HealthCheckResponse.ServingStatus.Name(status)


async def await_health(
    channel: grpc.aio.Channel, status: int, *, service: str = "", timeout: float = 10.0
) -> None:
    """Return once `service` on the channel reports `status`; TimeoutError otherwise."""
    stub = health_pb2_grpc.HealthStub(channel)
    seen: list[str] = []

    async def watch() -> None:
        call = stub.Watch(health_pb2.HealthCheckRequest(service=service), wait_for_ready=True)
        async for resp in call:
            seen.append(status_name(resp.status))
            if resp.status == status:
                call.cancel()
                return

    try:
        await asyncio.wait_for(watch(), timeout)
    except TimeoutError:
        raise TimeoutError(
            f"health of {service or 'server'!r} did not become {status_name(status)} within "
            f"{timeout:g} s (saw {seen or 'nothing'})"
        ) from None


def wait_health(
    target: str,
    status: int = SERVING,
    *,
    service: str = "",
    timeout: float = 30.0,
    alive: Callable[[], bool] | None = None,
) -> None:
    """Blocking variant for subprocess tests. `alive()` returning False (the process
    died) stops the wait early with RuntimeError."""
    deadline = time.monotonic() + timeout
    seen: list[str] = []
    with grpc.insecure_channel(target) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(
                    f"{target}: health of {service or 'server'!r} did not become "
                    f"{status_name(status)} within {timeout:g} s (saw {seen or 'nothing'})"
                )
            if alive is not None and not alive():
                raise RuntimeError(f"{target}: the process exited before becoming {status_name(status)}")
            try:
                call = stub.Watch(
                    health_pb2.HealthCheckRequest(service=service),
                    timeout=min(1.0, remaining),
                    wait_for_ready=True,
                )
                for resp in call:
                    seen.append(status_name(resp.status))
                    if resp.status == status:
                        call.cancel()
                        return
            except grpc.RpcError as exc:
                if exc.code() not in (grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.UNAVAILABLE,
                                      grpc.StatusCode.CANCELLED):
                    raise
