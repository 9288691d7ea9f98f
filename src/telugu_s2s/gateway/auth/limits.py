"""Per-key limits (open calls, calls per rolling minute) and the `Authenticator` that checks a
key and admits its calls against them."""

from __future__ import annotations

import asyncio
import collections
import hashlib
import hmac
import math
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import grpc

from telugu_s2s.gateway.auth.keys import (
    KEY_RE,
    PERMISSION_DENIED_MSG,
    UNAUTHENTICATED_MSG,
    AuthError,
    KeyEntry,
    hash_key,
    load_keys,
    parse_entry,
)


class RateWindow:
    """At most `limit` events in any rolling `window_s`; memory bounded by `limit`."""

    def __init__(self, limit: int, window_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit = limit
        self.window_s = window_s
        self.clock = clock
        self._events: collections.deque[float] = collections.deque(maxlen=limit)

    def try_acquire(self) -> bool:
        now = self.clock()
        if len(self._events) == self.limit and now - self._events[0] < self.window_s:
            return False
        self._events.append(now)
        return True


@dataclass(frozen=True)
class Limits:
    """A key's limits in force; also the gateway's defaults for entries that set none."""

    concurrent: int = 0  # open Converse calls; 0 = none
    per_minute: int = 0  # new Conversation RPCs per rolling minute; 0 = none

    @classmethod
    def fair_share(cls, max_calls: int, share: float, calls_per_minute: int) -> Limits:
        """`share` of a pod's `max_calls` (at least 1; share 0 = no default limit)."""
        return cls(max(1, math.ceil(max_calls * share)) if share > 0 else 0, calls_per_minute)


class _KeyState:
    def __init__(self) -> None:
        self.active = 0
        self.window: RateWindow | None = None
        self.per_minute = 0

    def window_for(self, per_minute: int, clock: Callable[[], float]) -> RateWindow | None:
        """The rolling window of this key's per-minute limit (rebuilt when the limit changes)."""
        if per_minute != self.per_minute:
            self.per_minute = per_minute
            self.window = RateWindow(per_minute, 60.0, clock) if per_minute else None
        return self.window


# ---------------------------------------------------------------------- principal


class Authenticator:
    """Checks keys and tracks per-key limits. One per gateway process."""

    def __init__(
        self,
        entries: Mapping[str, KeyEntry],
        *,
        defaults: Limits = Limits(),
        clock: Callable[[], float] = time.monotonic,
        cache_size: int = 1024,
    ) -> None:
        self.entries = dict(entries)
        self.defaults = defaults
        self.clock = clock
        self._state: dict[str, _KeyState] = {}
        # scrypt results: keyed digest of a verified key -> key id (bounded LRU).
        self._cache_secret = secrets.token_bytes(32)
        self._verified: collections.OrderedDict[bytes, str] = collections.OrderedDict()
        self._cache_size = cache_size
        # Compared against when the key id is unknown, so both paths do the same work.
        self._dummy = parse_entry({"id": "0" * 12, "tenant": "x", "hash": hash_key("x")}, "dummy")

    @classmethod
    def from_file(cls, path: str | Path, **kw) -> Authenticator:
        return cls(load_keys(path), **kw)

    def replace_entries(self, entries: Mapping[str, KeyEntry]) -> None:
        """Swap in a reloaded keys file: new calls see it at once; open calls keep their slots
        and end at their next turn if their key is no longer current (`is_current`)."""
        self.entries = dict(entries)
        self._verified.clear()
        for key_id in [k for k, st in self._state.items() if k not in self.entries and not st.active]:
            del self._state[key_id]

    def is_current(self, entry: KeyEntry) -> bool:
        """Whether the key a call was admitted with is still in the file, enabled, with the same hash."""
        now = self.entries.get(entry.id)
        return now is not None and not now.disabled and now.hash == entry.hash

    def limits(self, entry: KeyEntry) -> Limits:
        """The entry's limits, the gateway's defaults where the entry sets none."""
        c, m = entry.max_concurrent_calls, entry.max_calls_per_minute
        return Limits(self.defaults.concurrent if c is None else c, self.defaults.per_minute if m is None else m)

    async def authenticate(self, key: str | None) -> KeyEntry:
        """The entry of a valid, enabled key; AuthError(UNAUTHENTICATED) otherwise."""
        if not key:
            raise AuthError(grpc.StatusCode.UNAUTHENTICATED, UNAUTHENTICATED_MSG)
        m = KEY_RE.fullmatch(key)
        entry = self.entries.get(m.group(1)) if m else None
        if entry is None:
            self._dummy.verify(key)
            raise AuthError(grpc.StatusCode.UNAUTHENTICATED, UNAUTHENTICATED_MSG)
        if entry.kdf == "sha256":
            ok = entry.verify(key)
        else:
            tag = hmac.new(self._cache_secret, key.encode(), hashlib.sha256).digest()
            ok = self._verified.get(tag) == entry.id
            if ok:
                self._verified.move_to_end(tag)
            else:
                ok = await asyncio.to_thread(entry.verify, key)
                if ok:
                    self._verified[tag] = entry.id
                    while len(self._verified) > self._cache_size:
                        self._verified.popitem(last=False)
        if not ok or entry.disabled:
            raise AuthError(grpc.StatusCode.UNAUTHENTICATED, UNAUTHENTICATED_MSG)
        return entry

    def authorize(self, entry: KeyEntry, method: str) -> None:
        if method not in entry.methods:
            raise AuthError(grpc.StatusCode.PERMISSION_DENIED, PERMISSION_DENIED_MSG)

    def _key_state(self, entry: KeyEntry) -> _KeyState:
        state = self._state.get(entry.id)
        if state is None:
            state = self._state[entry.id] = _KeyState()
        return state

    def admit(self, entry: KeyEntry, *, stream: bool) -> None:
        """Count one new RPC against the key's limits (a stream also holds a concurrency slot)."""
        state = self._key_state(entry)
        limits = self.limits(entry)
        if stream and limits.concurrent and state.active >= limits.concurrent:
            raise AuthError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"this API key is at its limit of {limits.concurrent} concurrent calls; end a call or retry later",
            )
        window = state.window_for(limits.per_minute, self.clock)
        if window is not None and not window.try_acquire():
            raise AuthError(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                f"this API key is at its limit of {limits.per_minute} calls per minute; retry later",
            )
        if stream:
            state.active += 1

    def release(self, entry: KeyEntry) -> None:
        state = self._key_state(entry)
        state.active = max(0, state.active - 1)

    def active_calls(self, key_id: str) -> int:
        state = self._state.get(key_id)
        return state.active if state else 0
