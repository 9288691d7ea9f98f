"""Redis backend (redis.asyncio, one blocking connection pool, Lua scripts for atomicity).

Keys of one session (the `{id}` hash tag keeps them in one Redis Cluster slot):

    <prefix>{<id>}        hash   tenant, voice, created_ms, updated_ms, total_turns, bytes
    <prefix>{<id>}:turns  list   one element per remembered turn, oldest first:
                                 16 digits index | 16 digits created_ms | turn bytes
    <prefix>{<id>}:acks   zset   append tokens of the newest appends (score = turn index),
                                 so a retried append is not stored twice

All three carry the session TTL, refreshed by every call. Every operation is one Lua
script, so check-tenant + write + trim + TTL refresh is atomic and turn order is the
order in which Redis ran the scripts (the server's arrival order). Time comes from
Redis (`TIME`), so replicas of this service agree on it.
"""

from __future__ import annotations

import functools
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import (
    AuthenticationError,
    RedisError,
    ResponseError,
)
from redis.exceptions import (
    ConnectionError as RedisConnectionError,
)
from redis.exceptions import (
    TimeoutError as RedisTimeoutError,
)

from telugu_s2s.context import metrics
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
    StoreUnavailable,
    new_session_id,
    validate_tenant,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

HEADER_LEN = 32  # "%016d%016d" % (index, created_ms)
ACKS_KEPT = 64

_LUA_COMMON = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function touch(ttl)
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
  redis.call('PEXPIRE', KEYS[3], ttl)
end
local function owned(tenant)
  local t = redis.call('HGET', KEYS[1], 'tenant')
  return t and t == tenant
end
local function info()
  local h = redis.call('HMGET', KEYS[1], 'voice', 'created_ms', 'updated_ms', 'total_turns')
  return {h[1], h[2], h[3], h[4], redis.call('LLEN', KEYS[2])}
end
"""

# ARGV: tenant, voice, ttl_ms
_CREATE = (
    _LUA_COMMON
    + """
if redis.call('EXISTS', KEYS[1]) == 1 then return {'exists'} end
local now = string.format('%d', now_ms())
redis.call('HSET', KEYS[1], 'tenant', ARGV[1], 'voice', ARGV[2], 'created_ms', now,
           'updated_ms', now, 'total_turns', '0', 'bytes', '0')
touch(ARGV[3])
return {'ok', info()}
"""
)

# ARGV: tenant, ttl_ms
_GET = (
    _LUA_COMMON
    + """
if not owned(ARGV[1]) then return {'notfound'} end
touch(ARGV[2])
return {'ok', info()}
"""
)

# ARGV: tenant
_DELETE = (
    _LUA_COMMON
    + """
if not owned(ARGV[1]) then return {'notfound'} end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
return {'ok'}
"""
)

# ARGV: tenant, ttl_ms, voice
_SET_VOICE = (
    _LUA_COMMON
    + """
if not owned(ARGV[1]) then return {'notfound'} end
redis.call('HSET', KEYS[1], 'voice', ARGV[3], 'updated_ms', string.format('%d', now_ms()))
touch(ARGV[2])
return {'ok', info()}
"""
)

# ARGV: tenant, ttl_ms, max_turns, max_session_bytes, token, payload, acks_kept
_APPEND = (
    _LUA_COMMON
    + """
if not owned(ARGV[1]) then return {'notfound'} end
local seen = redis.call('ZSCORE', KEYS[3], ARGV[5])
if seen then
  touch(ARGV[2])
  return {'ok', redis.call('LLEN', KEYS[2]), tonumber(seen)}
end
local max_turns = tonumber(ARGV[3])
local len = redis.call('LLEN', KEYS[2])
local drop = len + 1 - max_turns
local dropped = 0
if drop > 0 then
  local old = redis.call('LRANGE', KEYS[2], 0, drop - 1)
  for i = 1, #old do dropped = dropped + #old[i] - 32 end
end
local h = redis.call('HMGET', KEYS[1], 'total_turns', 'bytes')
local new_bytes = tonumber(h[2]) - dropped + #ARGV[6]
if new_bytes > tonumber(ARGV[4]) then return {'toolarge', new_bytes} end
local index = tonumber(h[1]) + 1
local now = now_ms()
redis.call('RPUSH', KEYS[2], string.format('%016d%016d', index, now) .. ARGV[6])
if drop > 0 then redis.call('LTRIM', KEYS[2], drop, -1) end
redis.call('HSET', KEYS[1], 'total_turns', string.format('%d', index),
           'bytes', string.format('%d', new_bytes), 'updated_ms', string.format('%d', now))
redis.call('ZADD', KEYS[3], index, ARGV[5])
redis.call('ZREMRANGEBYRANK', KEYS[3], 0, -(tonumber(ARGV[7]) + 1))
touch(ARGV[2])
return {'ok', redis.call('LLEN', KEYS[2]), index}
"""
)

# ARGV: tenant, ttl_ms, n
_CONTEXT = (
    _LUA_COMMON
    + """
if not owned(ARGV[1]) then return {'notfound'} end
touch(ARGV[2])
local n = tonumber(ARGV[3])
local items = {}
if n > 0 then items = redis.call('LRANGE', KEYS[2], -n, -1) end
return {'ok', info(), items}
"""
)


class RedisStore(Store):
    def __init__(
        self,
        client: aioredis.Redis,
        limits: StoreLimits | None = None,
        *,
        key_prefix: str = "ts2s:ctx:",
        address: str = "redis",
    ) -> None:
        self.limits = limits or StoreLimits()
        self._r = client
        self._prefix = key_prefix
        self.address = address
        self.description = f"redis at {address}"
        self._ttl_ms = str(max(1, round(self.limits.ttl_s * 1000)))
        self._create = client.register_script(_CREATE)
        self._get = client.register_script(_GET)
        self._delete = client.register_script(_DELETE)
        self._set_voice = client.register_script(_SET_VOICE)
        self._append = client.register_script(_APPEND)
        self._context = client.register_script(_CONTEXT)

    @classmethod
    def from_url(
        cls,
        url: str,
        limits: StoreLimits | None = None,
        *,
        password: str | None = None,
        key_prefix: str = "ts2s:ctx:",
        pool_size: int = 32,
        timeout_s: float = 2.0,
        address: str | None = None,
        ssl_options: dict[str, Any] | None = None,
    ) -> RedisStore:
        """One blocking connection pool: a burst waits up to `timeout_s` for a connection
        instead of failing. Connection errors are retried once with a short backoff (a
        retried append is deduplicated by its token)."""
        kwargs: dict[str, Any] = {
            "max_connections": pool_size,
            "timeout": timeout_s,
            "socket_timeout": timeout_s,
            "socket_connect_timeout": timeout_s,
            "retry": Retry(ExponentialBackoff(cap=0.2, base=0.02), retries=1),
            "retry_on_error": [RedisConnectionError, RedisTimeoutError, ConnectionResetError],
            "health_check_interval": 30,
        }
        if password:
            kwargs["password"] = password
        if url.startswith("rediss://") and ssl_options:
            kwargs.update(ssl_options)
        pool = aioredis.BlockingConnectionPool.from_url(url, **kwargs)
        client = aioredis.Redis(connection_pool=pool)
        return cls(client, limits, key_prefix=key_prefix, address=address or _address_of(pool))

    @classmethod
    def from_config(cls, cfg, limits: StoreLimits) -> RedisStore:
        ssl: dict[str, Any] = {}
        if cfg.redis_url.startswith("rediss://"):
            ssl = {
                "ssl_cert_reqs": cfg.tls.verify,
                "ssl_check_hostname": cfg.tls.check_hostname and cfg.tls.verify != "none",
            }
            if cfg.tls.ca_file:
                ssl["ssl_ca_certs"] = cfg.tls.ca_file
            if cfg.tls.cert_file:
                ssl["ssl_certfile"] = cfg.tls.cert_file
            if cfg.tls.key_file:
                ssl["ssl_keyfile"] = cfg.tls.key_file
        return cls.from_url(
            cfg.redis_url,
            limits,
            password=cfg.redis_password,
            key_prefix=cfg.key_prefix,
            pool_size=cfg.redis_pool_size,
            timeout_s=cfg.redis_timeout_s,
            address=cfg.redis_address(),
            ssl_options=ssl,
        )

    # -- plumbing

    async def _create_in(self, session_id: str, tenant: str, voice: str):
        return await self._create(keys=self._keys(session_id), args=[tenant, voice, self._ttl_ms])

    def _keys(self, session_id: str) -> list[str]:
        base = f"{self._prefix}{{{session_id}}}"
        return [base, base + ":turns", base + ":acks"]

    async def _call(self, op: str, fn: Callable[[], Awaitable[T]]) -> T:
        start = time.perf_counter()
        try:
            result = await fn()
        except AuthenticationError as exc:
            metrics.REDIS_ERRORS.labels(op, "auth").inc()
            raise StoreUnavailable(
                f"context store unavailable: redis at {self.address} refused authentication "
                f"({exc}); check TS2S_CONTEXT_REDIS_PASSWORD or TS2S_CONTEXT_REDIS_PASSWORD_FILE"
            ) from exc
        except (RedisConnectionError, RedisTimeoutError, OSError) as exc:
            metrics.REDIS_ERRORS.labels(op, "unavailable").inc()
            raise StoreUnavailable(
                f"context store unavailable: redis at {self.address} is not reachable ({exc})"
            ) from exc
        except ResponseError as exc:
            metrics.REDIS_ERRORS.labels(op, "other").inc()
            raise StoreUnavailable(f"context store unavailable: redis at {self.address} refused {op}: {exc}") from exc
        except RedisError as exc:
            metrics.REDIS_ERRORS.labels(op, "other").inc()
            raise StoreUnavailable(f"context store unavailable: redis at {self.address} failed {op}: {exc}") from exc
        finally:
            metrics.REDIS_OP_SECONDS.labels(op).observe(time.perf_counter() - start)
        return result

    def _info(self, session_id: str, tenant: str, fields: list) -> SessionInfo:
        voice, created, updated, total, count = fields
        return SessionInfo(
            session_id=session_id,
            tenant=tenant,
            voice=voice.decode(),
            turn_count=int(count),
            total_turns=int(total),
            created_ms=int(created),
            updated_ms=int(updated),
        )

    # -- Store

    async def create_session(self, tenant: str, voice: str) -> SessionInfo:
        validate_tenant(tenant)
        for _ in range(3):
            sid = new_session_id()
            res = await self._call("create", functools.partial(self._create_in, sid, tenant, voice))
            if res[0] == b"ok":
                return self._info(sid, tenant, res[1])
        raise StoreUnavailable("context store could not allocate a fresh session id")  # pragma: no cover

    async def get_session(self, key: SessionKey) -> SessionInfo:
        key.validate()
        res = await self._call(
            "get", lambda: self._get(keys=self._keys(key.session_id), args=[key.tenant, self._ttl_ms])
        )
        if res[0] != b"ok":
            raise SessionNotFound(key.session_id)
        return self._info(key.session_id, key.tenant, res[1])

    async def delete_session(self, key: SessionKey) -> bool:
        key.validate()
        res = await self._call("delete", lambda: self._delete(keys=self._keys(key.session_id), args=[key.tenant]))
        return res[0] == b"ok"

    async def set_voice(self, key: SessionKey, voice: str) -> SessionInfo:
        key.validate()
        res = await self._call(
            "set_voice",
            lambda: self._set_voice(keys=self._keys(key.session_id), args=[key.tenant, self._ttl_ms, voice]),
        )
        if res[0] != b"ok":
            raise SessionNotFound(key.session_id)
        return self._info(key.session_id, key.tenant, res[1])

    async def append_turn(self, key: SessionKey, payload: bytes) -> AppendResult:
        return await self._append_with_token(key, payload, secrets.token_hex(8))

    async def _append_with_token(self, key: SessionKey, payload: bytes, token: str) -> AppendResult:
        key.validate()
        self._check_turn_size(payload)
        lim = self.limits
        res = await self._call(
            "append",
            lambda: self._append(
                keys=self._keys(key.session_id),
                args=[key.tenant, self._ttl_ms, lim.max_turns, lim.max_session_bytes, token, payload, ACKS_KEPT],
            ),
        )
        if res[0] == b"notfound":
            raise SessionNotFound(key.session_id)
        if res[0] == b"toolarge":
            raise SessionTooLarge(int(res[1]), lim.max_session_bytes)
        return AppendResult(turn_count=int(res[1]), turn_index=int(res[2]))

    async def get_context(self, key: SessionKey, max_turns: int = 0) -> SessionContext:
        key.validate()
        n = self._turns_wanted(max_turns)
        res = await self._call(
            "get_context",
            lambda: self._context(keys=self._keys(key.session_id), args=[key.tenant, self._ttl_ms, n]),
        )
        if res[0] != b"ok":
            raise SessionNotFound(key.session_id)
        turns = tuple(_parse_turn(item) for item in res[2])
        return SessionContext(self._info(key.session_id, key.tenant, res[1]), turns)

    async def ping(self) -> None:
        await self._call("ping", self._r.ping)

    async def close(self) -> None:
        await self._r.aclose()
        await self._r.connection_pool.disconnect()

    # -- for tests and operators

    async def ttl_ms(self, session_id: str) -> list[int]:
        """PTTL of the session's keys (-2 = missing, -1 = no TTL)."""
        return [int(await self._r.pttl(k)) for k in self._keys(session_id)]


def _parse_turn(item: bytes) -> StoredTurn:
    return StoredTurn(index=int(item[:16]), created_ms=int(item[16:HEADER_LEN]), payload=item[HEADER_LEN:])


def _address_of(pool: aioredis.ConnectionPool) -> str:
    kw = pool.connection_kwargs
    if "path" in kw:
        return str(kw["path"])
    return f"{kw.get('host', 'localhost')}:{kw.get('port', 6379)}"
