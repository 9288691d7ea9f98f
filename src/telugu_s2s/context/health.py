"""Background health probe: the service is SERVING only while its store answers.

The probe PINGs the store every `interval_s` (every `min(interval_s, 0.5)` while it is
down, so recovery is noticed quickly) and also right away when a call has just failed
with UNAVAILABLE (`kick()`). Transitions are logged and counted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from telugu_s2s.common.service import HealthState
from telugu_s2s.context import metrics
from telugu_s2s.context.store import Store, StoreUnavailable

log = logging.getLogger(__name__)

RETRY_WHILE_DOWN_S = 0.5


class StoreHealthProbe:
    def __init__(self, store: Store, health: HealthState, *, interval_s: float, timeout_s: float) -> None:
        self.store = store
        self.health = health
        self.interval_s = interval_s
        self.timeout_s = timeout_s
        self.up: bool | None = None
        self._kick = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def check(self) -> bool:
        """Probe once and update health; return whether the store is up."""
        try:
            await asyncio.wait_for(self.store.ping(), self.timeout_s)
            up, reason = True, ""
        except StoreUnavailable as exc:
            up, reason = False, str(exc)
        except TimeoutError:
            up, reason = (
                False,
                f"context store unavailable: {self.store.description} did not answer PING within {self.timeout_s:g} s",
            )
        if up != self.up:
            if up:
                log.info("context store reachable; serving", extra={"store": self.store.description})
            else:
                log.error("%s; health NOT_SERVING until it is back", reason)
            metrics.HEALTH_TRANSITIONS.labels("serving" if up else "not_serving").inc()
            self.up = up
            await self.health.set(up)
        return up

    def kick(self) -> None:
        """Probe now (a call just saw the store unavailable)."""
        self._kick.set()

    async def start(self) -> None:
        await self.check()
        self._task = asyncio.create_task(self._loop(), name="context-store-health-probe")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _loop(self) -> None:
        while True:
            wait = self.interval_s if self.up else min(self.interval_s, RETRY_WHILE_DOWN_S)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), wait)
            self._kick.clear()
            try:
                await self.check()
            except Exception:
                log.exception("health probe failed")
