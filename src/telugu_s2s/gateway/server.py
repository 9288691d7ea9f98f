"""Gateway wiring: downstream clients, readiness monitor, servicer, GrpcService lifecycle."""

from __future__ import annotations

import asyncio
import logging
import signal

from telugu_s2s.common.service import start_metrics_server
from telugu_s2s.gateway import metrics
from telugu_s2s.gateway.auth import AuthInterceptor, KeysWatcher, Limits, build_authenticator
from telugu_s2s.gateway.channels import channel_options
from telugu_s2s.gateway.codec_client import CodecClient
from telugu_s2s.gateway.config import Config
from telugu_s2s.gateway.context_client import ContextClient
from telugu_s2s.gateway.downstream import DownstreamMonitor
from telugu_s2s.gateway.generation import S2SGenerator
from telugu_s2s.gateway.input import TurnDefaults
from telugu_s2s.gateway.servicer import SERVICE_NAME, ConversationServicer
from telugu_s2s.gateway.session import CallDeps
from telugu_s2s.security.tls import TlsGrpcService
from telugu_s2s.turn.model import DEFAULT_WEIGHTS, TurnModel
from telugu_s2s.v1 import conversation_pb2_grpc

log = logging.getLogger(__name__)

# gRPC's own receive limit (its default): messages between `max_message_bytes` and this are
# read and refused by the servicer with a clear message and the right count.
TRANSPORT_MAX_MESSAGE_BYTES = 4 * 1024 * 1024


class Gateway:
    """Everything the gateway runs; `serve()` adds signals and metrics, tests use it directly."""

    def __init__(
        self,
        cfg: Config,
        generator: S2SGenerator,
        unavailable_errors: tuple[type[BaseException], ...] = (),
    ) -> None:
        self.cfg = cfg
        # The weights first: a missing or foreign file stops start-up before anything else.
        turn = TurnDefaults(TurnModel.load(cfg.turn_model or DEFAULT_WEIGHTS), cfg.turn_detection, cfg.preempt_at)
        defaults = Limits.fair_share(cfg.max_calls, cfg.key_default_call_share, cfg.key_default_calls_per_minute)
        self.auth = build_authenticator(cfg.auth, cfg.api_keys_file, defaults)
        self.keys_watcher = (
            None
            if self.auth is None
            else KeysWatcher(
                cfg.api_keys_file,
                self.auth,
                cfg.keys_reload_interval_s,
                on_result=lambda result: metrics.KEYS_RELOADS.labels(result).inc(),
            )
        )
        self.service = TlsGrpcService(
            "gateway",
            cfg.host,
            cfg.port,
            service_names=[SERVICE_NAME],
            grace_s=cfg.drain_grace_s,
            # gRPC itself refuses only what is far over the limit (with its own text, and the
            # call ends here as CANCELLED); the servicer refuses the rest, says why, and counts it.
            options=[("grpc.max_receive_message_length", max(cfg.max_message_bytes, TRANSPORT_MAX_MESSAGE_BYTES))],
            interceptors=[AuthInterceptor(self.auth, on_reject=lambda code: metrics.AUTH_REJECTED.labels(code).inc())],
            tls=cfg.server_tls(),
        )
        codec_tls, context_tls = cfg.client_tls("codec"), cfg.client_tls("context")
        self.codec = CodecClient(
            cfg.codec_target, cfg.downstream_timeout_s, codec_tls.aio_channel(cfg.codec_target, channel_options())
        )
        self.context = ContextClient(
            cfg.context_target,
            cfg.downstream_timeout_s,
            context_tls.aio_channel(cfg.context_target, channel_options()),
        )
        self.generator = generator
        self.monitor = DownstreamMonitor(
            self.codec,
            self.context,
            generator,
            triton_target=cfg.triton_target,
            interval_s=cfg.health_interval_s,
            on_change=self.service.health.set,
        )
        key_current = None if self.auth is None else self.auth.is_current
        self.servicer = ConversationServicer(
            cfg,
            CallDeps(
                self.codec,
                self.context,
                generator,
                self.monitor,
                unavailable_errors,
                key_current=key_current,
                turn=turn,
            ),
        )
        conversation_pb2_grpc.add_ConversationServicer_to_server(self.servicer, self.service.server)
        self.service.on_drain(self.monitor.stop)
        self.service.on_drain(self._drain_calls)
        self.service.until_idle(self.servicer.wait_idle)
        self.service.on_close(self._close_clients)

    async def start(self, *, monitor: bool = True) -> int:
        """Bind and serve; returns the bound port. Health follows the first downstream check."""
        await self.service.health.set(False)
        port = await self.service.start()
        await self.monitor.check_once()
        if monitor:
            self.monitor.start()
        if self.keys_watcher is not None:
            self.keys_watcher.start()
        return port

    def install_reload_signal(self) -> None:
        """SIGHUP re-reads the API keys file at once."""
        if self.keys_watcher is not None:
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self.keys_watcher.request_reload)

    async def _drain_calls(self) -> None:
        """Calls stop taking input, finish their replies and end with UNAVAILABLE (resume elsewhere)."""
        self.servicer.deps.draining.set()

    async def _close_clients(self) -> None:
        if self.keys_watcher is not None:
            await self.keys_watcher.stop()
        await self.monitor.stop()
        await self.codec.close()
        await self.context.close()
        await self.generator.close()

    async def stop(self) -> None:
        """Drain as on SIGTERM: NOT_SERVING, let calls finish within the grace, close clients."""
        self.service.request_stop()
        await self.service.wait_and_drain()


def _triton_generator(cfg: Config) -> tuple[S2SGenerator, tuple[type[BaseException], ...]]:
    # Imported here so the gateway's other modules do not depend on the Triton client.
    from telugu_s2s.s2s.client import S2SUnavailable, TritonS2SClient

    return TritonS2SClient(cfg.triton_target), (S2SUnavailable,)


async def serve(cfg: Config) -> None:
    generator, unavailable = _triton_generator(cfg)
    gateway = Gateway(cfg, generator, unavailable)
    start_metrics_server(cfg.host, cfg.metrics_port)
    await gateway.start()
    gateway.service.install_signal_handlers()
    gateway.install_reload_signal()
    log.info(
        "gateway ready" if gateway.monitor.ready else "gateway started; waiting for downstreams",
        extra={"downstreams": {k: v[1] for k, v in gateway.monitor.status().items()}},
    )
    await gateway.service.wait_and_drain()
