"""Readiness of the gateway's downstreams (codec, S2S model on Triton, context).

A background task checks all three every `interval_s` and drives the gateway's
grpc.health.v1 status: SERVING only when the codec is healthy and answered Info,
the Triton model is ready and the context service is healthy. New calls are
refused with UNAVAILABLE naming the first downstream that is not ready.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from telugu_s2s.common.codec_info import CodecInfo
from telugu_s2s.gateway.codec_client import CodecClient
from telugu_s2s.gateway.context_client import ContextClient
from telugu_s2s.gateway.errors import DownstreamUnavailable
from telugu_s2s.gateway.generation import S2SGenerator

log = logging.getLogger(__name__)

CODEC = "codec"
S2S = "s2s model (Triton)"
CONTEXT = "context"


@dataclass
class _State:
    target: str
    ready: bool = False
    detail: str = "not checked yet"


class DownstreamMonitor:
    def __init__(
        self,
        codec: CodecClient,
        context: ContextClient,
        generator: S2SGenerator,
        *,
        triton_target: str,
        interval_s: float,
        on_change=None,
    ) -> None:
        self.codec = codec
        self.context = context
        self.generator = generator
        self.interval_s = interval_s
        self.codec_info: CodecInfo | None = None
        self._states = {
            CODEC: _State(codec.target),
            S2S: _State(triton_target),
            CONTEXT: _State(context.target),
        }
        self._on_change = on_change  # async (ready: bool) -> None
        self._task: asyncio.Task | None = None
        self._stop = asyncio.Event()
        self.ready = False

    async def _check_codec(self) -> tuple[bool, str]:
        if not await self.codec.healthy():
            return False, "health check is not SERVING"
        try:
            self.codec_info = await self.codec.info()
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            return False, f"Info failed: {exc}"
        return True, "ready"

    async def _check_s2s(self) -> tuple[bool, str]:
        try:
            ok = await asyncio.wait_for(self.generator.ready(), timeout=self.codec.timeout_s)
        except Exception as exc:  # noqa: BLE001
            return False, f"readiness check failed: {exc}"
        return bool(ok), "ready" if ok else "model not ready"

    async def _check_context(self) -> tuple[bool, str]:
        ok = await self.context.healthy()
        return ok, "ready" if ok else "health check is not SERVING"

    async def check_once(self) -> bool:
        results = await asyncio.gather(self._check_codec(), self._check_s2s(), self._check_context())
        for name, (ok, detail) in zip((CODEC, S2S, CONTEXT), results):
            st = self._states[name]
            if st.ready != ok:
                (log.info if ok else log.warning)(
                    "downstream %s", "ready" if ok else "not ready", extra={"downstream": name, "detail": detail}
                )
            st.ready, st.detail = ok, detail
        ready = all(st.ready for st in self._states.values())
        changed = ready != self.ready
        self.ready = ready
        if self._on_change is not None:
            await self._on_change(ready)
        if changed and self.codec_info is not None and self.codec_info.random_weights:
            log.warning("the codec runs on UNTRAINED weights: replies are noise")
        return ready

    def require_ready(self) -> CodecInfo:
        """The codec's Info, or DownstreamUnavailable naming the first downstream not ready."""
        for name, st in self._states.items():
            if not st.ready:
                raise DownstreamUnavailable(name, st.target, st.detail)
        assert self.codec_info is not None
        return self.codec_info

    def status(self) -> dict[str, tuple[bool, str]]:
        return {name: (st.ready, st.detail) for name, st in self._states.items()}

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="downstream-monitor")

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                await self.check_once()
            except Exception:
                log.exception("downstream check failed")
            try:
                await asyncio.wait_for(self._stop.wait(), timeout=self.interval_s)
            except TimeoutError:
                pass

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
