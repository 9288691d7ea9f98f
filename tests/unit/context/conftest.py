"""Backends for the context store contract tests: memory:// and a real redis-server."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest

from telugu_s2s.context.memory_store import MemoryStore
from telugu_s2s.context.redis_local import LocalRedis
from telugu_s2s.context.redis_store import RedisStore
from telugu_s2s.context.store import Store, StoreLimits

BACKENDS = [
    pytest.param("memory", id="memory"),
    pytest.param("redis", id="redis", marks=pytest.mark.e2e),
]


@dataclass
class Backend:
    """Makes stores of one backend and reaches behind them for TTL checks."""

    name: str
    make_store: Callable[..., Store]
    opened: list[Store] = field(default_factory=list)

    def make(self, **limits: object) -> Store:
        store = self.make_store(StoreLimits(**limits))  # type: ignore[arg-type]
        self.opened.append(store)
        return store

    async def ttl_left(self, store: Store, session_id: str) -> float:
        """Seconds until the session expires (the smallest over its keys)."""
        if isinstance(store, MemoryStore):
            left = store.expires_in(session_id)
            assert left is not None
            return left
        assert isinstance(store, RedisStore)
        ttls = [t for t in await store.ttl_ms(session_id) if t != -2]
        assert ttls and all(t > 0 for t in ttls), f"keys without TTL: {ttls}"
        return min(ttls) / 1000

    async def shorten_ttl(self, store: Store, session_id: str, seconds: float) -> None:
        if isinstance(store, MemoryStore):
            store._sessions[session_id].expires_at = time.monotonic() + seconds
            return
        assert isinstance(store, RedisStore)
        for key in store._keys(session_id):
            await store._r.pexpire(key, max(1, int(seconds * 1000)))


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest) -> AsyncIterator[Backend]:
    if request.param == "memory":
        b = Backend("memory", lambda limits: MemoryStore(limits, announce=False))
    else:
        server: LocalRedis = request.getfixturevalue("redis_server")
        prefix: str = request.getfixturevalue("redis_key_prefix")
        b = Backend("redis", lambda limits: RedisStore.from_url(server.url, limits, key_prefix=prefix))
    try:
        yield b
    finally:
        for store in b.opened:
            await store.close()


@pytest.fixture
async def store(backend: Backend) -> Store:
    return backend.make()
