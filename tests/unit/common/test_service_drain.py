"""GrpcService drain order: NOT_SERVING while still listening, then stop once idle."""

from __future__ import annotations

import asyncio
import time

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from telugu_s2s.common.service import SHUTDOWN_GRACE_S, GrpcService

NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


async def _started(grace_s: float) -> tuple[GrpcService, str]:
    service = GrpcService("t", "127.0.0.1", 0, service_names=[], grace_s=grace_s)
    port = await service.start()
    await service.health.set(True)
    return service, f"127.0.0.1:{port}"


async def test_server_keeps_listening_until_in_flight_work_is_done():
    service, target = await _started(grace_s=30)
    idle = asyncio.Event()
    service.until_idle(idle.wait)
    service.request_stop()
    drain = asyncio.create_task(service.wait_and_drain())
    async with grpc.aio.insecure_channel(target) as ch:
        stub = health_pb2_grpc.HealthStub(ch)
        # Still answering (so new work can be refused with a reason), but NOT_SERVING.
        for _ in range(50):
            reply = await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
            if reply.status == NOT_SERVING:
                break
            await asyncio.sleep(0.02)
        assert reply.status == NOT_SERVING
        await asyncio.sleep(0.3)
        assert not drain.done()
        assert (await stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)).status == NOT_SERVING
    idle.set()
    await asyncio.wait_for(drain, 10)


async def test_an_open_watch_stream_does_not_hold_the_drain():
    service, target = await _started(grace_s=30)
    service.until_idle(lambda: asyncio.sleep(0))
    async with grpc.aio.insecure_channel(target) as ch:
        watch = health_pb2_grpc.HealthStub(ch).Watch(health_pb2.HealthCheckRequest(service=""))
        await watch.read()
        started = time.monotonic()
        service.request_stop()
        await asyncio.wait_for(service.wait_and_drain(), 10)
        assert time.monotonic() - started < SHUTDOWN_GRACE_S + 2


async def test_work_that_outlives_the_grace_does_not_block_the_stop():
    service, _ = await _started(grace_s=0.3)
    service.until_idle(asyncio.Event().wait)  # never idle
    service.request_stop()
    started = time.monotonic()
    await asyncio.wait_for(service.wait_and_drain(), 10)
    assert time.monotonic() - started < 3
