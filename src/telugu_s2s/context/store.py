"""The session store: interface, records and errors shared by the Redis and memory backends.

The store knows sessions (tenant, voice, timestamps, counters) and an ordered list of
turns per session. A turn's content is an opaque byte string to the store (the servicer
serializes the `Turn` message); the store assigns each turn its 1-based index in arrival
order and its creation time, and keeps only the newest `max_turns`.

Both backends implement the same contract (tests/unit/context/test_store_contract.py):
every operation refreshes the session's TTL; a session owned by another tenant is
indistinguishable from a missing one; append + trim + TTL refresh is one atomic step.
"""

from __future__ import annotations

import abc
import re
import secrets
from dataclasses import dataclass

SESSION_ID_RE = re.compile(r"^[0-9a-f]{32}$")
MAX_TENANT_LEN = 128


def new_session_id() -> str:
    """128 random bits as 32 lowercase hex characters."""
    return secrets.token_hex(16)


def is_valid_session_id(session_id: str) -> bool:
    return bool(SESSION_ID_RE.match(session_id))


# ---------------------------------------------------------------------------- errors


class StoreError(Exception):
    """Base of the store's errors; the message is meant for the caller."""


class InvalidSessionId(StoreError):
    def __init__(self, session_id: str) -> None:
        shown = session_id if len(session_id) <= 40 else session_id[:40] + "..."
        super().__init__(
            f"malformed session id {shown!r}: a session id is 32 lowercase hex characters, as returned by CreateSession"
        )


class InvalidTenant(StoreError):
    pass


class SessionNotFound(StoreError):
    def __init__(self, session_id: str) -> None:
        super().__init__(
            f"session {session_id} not found: it never existed, was deleted, expired, "
            "or belongs to another tenant; create a new session"
        )
        self.session_id = session_id


class TurnTooLarge(StoreError):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"turn is {size} bytes serialized, over the limit of {limit} bytes per turn "
            "(TS2S_CONTEXT_MAX_TURN_BYTES); send shorter code blocks"
        )
        self.size = size
        self.limit = limit


class SessionTooLarge(StoreError):
    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"session would hold {size} bytes of turns, over the limit of {limit} bytes per "
            "session (TS2S_CONTEXT_MAX_SESSION_BYTES); send shorter turns or start a new session"
        )
        self.size = size
        self.limit = limit


class StoreUnavailable(StoreError):
    """The backing store cannot be reached (gRPC UNAVAILABLE; the caller may retry)."""


# ---------------------------------------------------------------------------- records


@dataclass(frozen=True)
class SessionKey:
    """Who asks for which session. `tenant` is "" in single-tenant local mode."""

    session_id: str
    tenant: str = ""

    def validate(self) -> None:
        if not is_valid_session_id(self.session_id):
            raise InvalidSessionId(self.session_id)
        validate_tenant(self.tenant)


def validate_tenant(tenant: str) -> None:
    if len(tenant) > MAX_TENANT_LEN:
        raise InvalidTenant(f"tenant is {len(tenant)} characters; at most {MAX_TENANT_LEN} allowed")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in tenant):
        raise InvalidTenant("tenant must not contain control characters")


@dataclass(frozen=True)
class SessionInfo:
    session_id: str
    tenant: str
    voice: str
    # Turns currently remembered (<= max_turns) and ever appended.
    turn_count: int
    total_turns: int
    # Unix epoch milliseconds (the backend's clock).
    created_ms: int
    updated_ms: int


@dataclass(frozen=True)
class StoredTurn:
    # 1-based position in the session's history, in the order the store received the turns.
    index: int
    # Unix epoch milliseconds when the store appended it.
    created_ms: int
    payload: bytes


@dataclass(frozen=True)
class AppendResult:
    turn_count: int
    turn_index: int


@dataclass(frozen=True)
class SessionContext:
    session: SessionInfo
    # Oldest first.
    turns: tuple[StoredTurn, ...]


@dataclass(frozen=True)
class StoreLimits:
    ttl_s: float = 86400.0
    max_turns: int = 10
    max_turn_bytes: int = 256 * 1024
    max_session_bytes: int = 2 * 1024 * 1024


# ---------------------------------------------------------------------------- interface


class Store(abc.ABC):
    """Session memory. All methods refresh the session's TTL when the session exists.

    Raises SessionNotFound for a missing or other-tenant session, InvalidSessionId for a
    malformed id, TurnTooLarge / SessionTooLarge for oversized appends, and
    StoreUnavailable when the backend cannot be reached.
    """

    limits: StoreLimits
    # Human-readable backend description for logs and health details (never a password).
    description: str

    @abc.abstractmethod
    async def create_session(self, tenant: str, voice: str) -> SessionInfo: ...

    @abc.abstractmethod
    async def get_session(self, key: SessionKey) -> SessionInfo: ...

    @abc.abstractmethod
    async def delete_session(self, key: SessionKey) -> bool:
        """True when the session existed (for this tenant) and is now gone."""

    @abc.abstractmethod
    async def set_voice(self, key: SessionKey, voice: str) -> SessionInfo: ...

    @abc.abstractmethod
    async def append_turn(self, key: SessionKey, payload: bytes) -> AppendResult: ...

    @abc.abstractmethod
    async def get_context(self, key: SessionKey, max_turns: int = 0) -> SessionContext:
        """The session and its newest `max_turns` turns (0 = the configured maximum)."""

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise StoreUnavailable when the backend cannot serve requests."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    # Helpers shared by the backends.
    def _turns_wanted(self, max_turns: int) -> int:
        if max_turns <= 0:
            return self.limits.max_turns
        return min(max_turns, self.limits.max_turns)

    def _check_turn_size(self, payload: bytes) -> None:
        if len(payload) > self.limits.max_turn_bytes:
            raise TurnTooLarge(len(payload), self.limits.max_turn_bytes)


def open_store(cfg) -> Store:  # cfg: telugu_s2s.context.config.Config
    """Build the store the configuration names (memory:// or a Redis URL)."""
    limits = StoreLimits(
        ttl_s=cfg.ttl_s,
        max_turns=cfg.max_turns,
        max_turn_bytes=cfg.max_turn_bytes,
        max_session_bytes=cfg.max_session_bytes,
    )
    if cfg.is_memory:
        from telugu_s2s.context.memory_store import MemoryStore

        return MemoryStore(limits)
    from telugu_s2s.context.redis_store import RedisStore

    return RedisStore.from_config(cfg, limits)
