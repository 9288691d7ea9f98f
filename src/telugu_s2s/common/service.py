"""The one way a gRPC service starts and stops.

`GrpcService` binds the port (a taken port is a clear error), adds standard health
and reflection, serves Prometheus metrics on its own port, and on SIGTERM/SIGINT
drains: health NOT_SERVING -> the service's drain hooks (it starts refusing new work
with a clear status while still listening) -> its in-flight work gets up to `grace_s` to
finish -> the server stops (remaining RPCs, such as health Watch streams, get a short
grace) -> the service's own cleanup.

Stopping the gRPC server only after the in-flight work is done matters: a call that
arrives while the server is shutting down is cancelled by the transport (CANCELLED), not
refused by the service (UNAVAILABLE with a reason), and a client cannot tell the two apart.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable, Iterable

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from telugu_s2s.common import reflection

log = logging.getLogger(__name__)


# What RPCs still open once the service's own work is done (health Watch streams,
# stray unary calls) get before the server cancels them.
SHUTDOWN_GRACE_S = 1.0


class PortInUseError(RuntimeError):
    pass


class HealthState:
    """Sets the serving status of the overall server and each named service together."""

    def __init__(self, service_names: Iterable[str]) -> None:
        self.servicer = health.aio.HealthServicer()
        self.names = ["", *service_names]
        self.serving = False

    async def set(self, serving: bool) -> None:
        self.serving = serving
        status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        for name in self.names:
            await self.servicer.set(name, status)


def start_metrics_server(host: str, port: int) -> None:
    """Prometheus /metrics on its own port (0 disables)."""
    if not port:
        return
    from prometheus_client import start_http_server

    try:
        start_http_server(port, addr=host)
    except OSError as exc:
        raise PortInUseError(f"metrics port {host}:{port} is not available: {exc}") from exc


class GrpcService:
    def __init__(
        self,
        name: str,
        host: str,
        port: int,
        *,
        service_names: Iterable[str],
        grace_s: float = 10.0,
        options: list[tuple[str, object]] | None = None,
        interceptors: list | None = None,
    ) -> None:
        self.name = name
        self.host = host
        self.port = port
        self.grace_s = grace_s
        self.service_names = list(service_names)
        self.server = grpc.aio.server(options=options or [], interceptors=interceptors or [])
        self.health = HealthState(self.service_names)
        health_pb2_grpc.add_HealthServicer_to_server(self.health.servicer, self.server)
        self.bound_port: int | None = None
        self._stop = asyncio.Event()
        self._on_drain: list[Callable[[], Awaitable[None]]] = []
        self._on_close: list[Callable[[], Awaitable[None]]] = []
        self._until_idle: Callable[[], Awaitable[None]] | None = None

    def on_drain(self, fn: Callable[[], Awaitable[None]]) -> None:
        """Runs after health goes NOT_SERVING and before the server stops."""
        self._on_drain.append(fn)

    def until_idle(self, fn: Callable[[], Awaitable[None]]) -> None:
        """While draining, the server keeps listening until `fn` returns (or `grace_s` passes).

        Without it the server stops accepting at once and in-flight RPCs get `grace_s`."""
        self._until_idle = fn

    def on_close(self, fn: Callable[[], Awaitable[None]]) -> None:
        """Runs after the server has stopped (close channels, pools, threads)."""
        self._on_close.append(fn)

    async def start(self) -> int:
        reflection.enable(self.server, [*self.service_names, health.SERVICE_NAME])
        address = f"{self.host}:{self.port}"
        try:
            bound = self.server.add_insecure_port(address)
        except RuntimeError as exc:
            raise PortInUseError(f"{self.name}: cannot listen on {address}: {exc}") from exc
        if bound == 0:
            raise PortInUseError(f"{self.name}: cannot listen on {address} (port in use?)")
        self.bound_port = bound
        await self.server.start()
        log.info("%s listening", self.name, extra={"address": f"{self.host}:{bound}"})
        return bound

    def request_stop(self) -> None:
        self._stop.set()

    def install_signal_handlers(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)

    async def wait_and_drain(self) -> None:
        await self._stop.wait()
        log.info("%s draining", self.name, extra={"grace_s": self.grace_s})
        await self.health.set(False)
        for fn in self._on_drain:
            await fn()
        if self._until_idle is None:
            await self.server.stop(self.grace_s)
        else:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + self.grace_s
            try:
                await asyncio.wait_for(self._until_idle(), self.grace_s)
            except TimeoutError:
                log.warning("%s: in-flight work outlived the drain grace", self.name)
            remaining = max(0.0, deadline - loop.time())
            await self.server.stop(min(remaining, SHUTDOWN_GRACE_S))
        for fn in self._on_close:
            try:
                await fn()
            except Exception:
                log.exception("%s cleanup failed", self.name)
        log.info("%s stopped", self.name)
