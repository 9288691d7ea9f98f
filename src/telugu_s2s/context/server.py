"""The context service process: store + gRPC servicer + health probe + metrics."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from telugu_s2s.common.service import GrpcService, start_metrics_server
from telugu_s2s.context.config import Config
from telugu_s2s.context.health import StoreHealthProbe
from telugu_s2s.context.servicer import SERVICE_NAME, ContextServicer
from telugu_s2s.context.store import Store, open_store
from telugu_s2s.security.logctx import RequestIdInterceptor
from telugu_s2s.security.tls import TlsGrpcService
from telugu_s2s.v1 import context_pb2_grpc

log = logging.getLogger(__name__)


@dataclass
class RunningContext:
    service: GrpcService
    store: Store
    probe: StoreHealthProbe

    @property
    def port(self) -> int:
        assert self.service.bound_port is not None
        return self.service.bound_port

    async def stop(self) -> None:
        """Drain and stop (what SIGTERM does)."""
        self.service.request_stop()
        await self.service.wait_and_drain()


async def start(cfg: Config, *, store: Store | None = None, metrics: bool = True) -> RunningContext:
    """Build and start the service; returns once it listens. Health is SERVING only while
    the store answers; the service starts (NOT_SERVING) even when Redis is down and
    recovers on its own when Redis comes back."""
    store = store or open_store(cfg)
    service = TlsGrpcService(
        "context",
        cfg.host,
        cfg.port,
        service_names=[SERVICE_NAME],
        grace_s=cfg.drain_grace_s,
        interceptors=[RequestIdInterceptor()],
        tls=cfg.server_tls,
    )
    probe = StoreHealthProbe(store, service.health, interval_s=cfg.health_interval_s, timeout_s=cfg.redis_timeout_s)
    context_pb2_grpc.add_ContextStoreServicer_to_server(
        ContextServicer(store, on_unavailable=probe.kick), service.server
    )

    async def stop_probe() -> None:
        await probe.stop()
        await service.health.set(False)  # the probe may have flipped it back meanwhile

    service.on_drain(stop_probe)
    service.on_close(store.close)
    if metrics:
        start_metrics_server(cfg.metrics_host, cfg.metrics_port)
    await service.start()
    log.info(
        "context store configured",
        extra={"store": store.description, "ttl_s": cfg.ttl_s, "max_turns": cfg.max_turns},
    )
    await probe.start()
    return RunningContext(service, store, probe)


async def serve(cfg: Config) -> None:
    running = await start(cfg)
    running.service.install_signal_handlers()
    await running.service.wait_and_drain()
