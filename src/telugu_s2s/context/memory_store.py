"""`memory://`: sessions kept in this process's memory.

For one process only (the local single-replica default and tests). Sessions live as
long as the process; two replicas would each see their own sessions, so a gateway
talking to another replica would get NOT_FOUND. Use Redis for more than one replica.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from telugu_s2s.context.store import (
    AppendResult,
    SessionContext,
    SessionInfo,
    SessionKey,
    SessionNotFound,
    SessionTooLarge,
    Store,
    StoredTurn,
    StoreLimits,
    new_session_id,
    validate_tenant,
)

log = logging.getLogger(__name__)


@dataclass
class _Session:
    info: SessionInfo
    expires_at: float
    turns: deque[StoredTurn] = field(default_factory=deque)
    bytes: int = 0


class MemoryStore(Store):
    """Single-process store. Every method runs without awaiting, so each is atomic on the
    event loop (no lock needed). Expired sessions are dropped lazily and by a sweep on
    create."""

    description = "memory:// (single process; NOT for more than one replica)"

    def __init__(
        self,
        limits: StoreLimits | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall_clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
        announce: bool = True,
    ) -> None:
        self.limits = limits or StoreLimits()
        self._clock = clock
        self._wall_ms = wall_clock_ms
        self._sessions: dict[str, _Session] = {}
        self._last_sweep = clock()
        if announce:
            log.warning(
                "context store is memory://: sessions live in this process only and are lost on "
                "restart; do NOT run more than one replica with it (set TS2S_CONTEXT_REDIS_URL "
                "to a redis:// URL for that)"
            )

    # -- internals

    def _live(self, key: SessionKey) -> _Session:
        key.validate()
        s = self._sessions.get(key.session_id)
        now = self._clock()
        if s is not None and s.expires_at <= now:
            del self._sessions[key.session_id]
            s = None
        if s is None or s.info.tenant != key.tenant:
            raise SessionNotFound(key.session_id)
        s.expires_at = now + self.limits.ttl_s
        return s

    def _sweep(self) -> None:
        now = self._clock()
        if now - self._last_sweep < min(60.0, self.limits.ttl_s):
            return
        self._last_sweep = now
        for sid in [sid for sid, s in self._sessions.items() if s.expires_at <= now]:
            del self._sessions[sid]

    def _info(self, s: _Session) -> SessionInfo:
        return replace(s.info, turn_count=len(s.turns))

    # -- Store

    async def create_session(self, tenant: str, voice: str) -> SessionInfo:
        validate_tenant(tenant)
        self._sweep()
        sid = new_session_id()
        while sid in self._sessions:  # 2**-128; kept for symmetry with Redis
            sid = new_session_id()
        now_ms = self._wall_ms()
        info = SessionInfo(sid, tenant, voice, 0, 0, now_ms, now_ms)
        self._sessions[sid] = _Session(info, self._clock() + self.limits.ttl_s)
        return info

    async def get_session(self, key: SessionKey) -> SessionInfo:
        return self._info(self._live(key))

    async def delete_session(self, key: SessionKey) -> bool:
        try:
            self._live(key)
        except SessionNotFound:
            return False
        del self._sessions[key.session_id]
        return True

    async def set_voice(self, key: SessionKey, voice: str) -> SessionInfo:
        s = self._live(key)
        s.info = replace(s.info, voice=voice, updated_ms=self._wall_ms())
        return self._info(s)

    async def append_turn(self, key: SessionKey, payload: bytes) -> AppendResult:
        key.validate()  # a malformed id is reported before an oversized payload
        self._check_turn_size(payload)
        s = self._live(key)
        keep = self.limits.max_turns - 1
        dropped = sum(len(t.payload) for t in list(s.turns)[: max(0, len(s.turns) - keep)])
        new_bytes = s.bytes - dropped + len(payload)
        if new_bytes > self.limits.max_session_bytes:
            raise SessionTooLarge(new_bytes, self.limits.max_session_bytes)
        now_ms = self._wall_ms()
        index = s.info.total_turns + 1
        s.turns.append(StoredTurn(index, now_ms, bytes(payload)))
        while len(s.turns) > self.limits.max_turns:
            s.turns.popleft()
        s.bytes = new_bytes
        s.info = replace(s.info, total_turns=index, updated_ms=now_ms)
        return AppendResult(len(s.turns), index)

    async def get_context(self, key: SessionKey, max_turns: int = 0) -> SessionContext:
        s = self._live(key)
        n = self._turns_wanted(max_turns)
        turns = tuple(list(s.turns)[-n:]) if n else ()
        return SessionContext(self._info(s), turns)

    async def ping(self) -> None:
        return None

    def expires_in(self, session_id: str) -> float | None:
        """Seconds until the session expires (for tests and debugging)."""
        s = self._sessions.get(session_id)
        return None if s is None else s.expires_at - self._clock()
