"""API keys on the public API: `authorization: Bearer <key>` metadata.

A key looks like `ts2s_<key id>.<secret>`. The key id (public, 12 hex characters) names one
entry of the keys file; the secret (32 random bytes, URL-safe base64) is never stored: the
entry holds a salted hash of the whole key, checked with a constant-time compare.

Keys file (TS2S_GATEWAY_API_KEYS_FILE, JSON or YAML; a mounted Kubernetes Secret works)::

    {"keys": [{"id": "0f3a9c2b7d41", "tenant": "acme",
               "hash": "sha256$<salt hex>$<digest hex>",
               "max_concurrent_calls": 10, "max_calls_per_minute": 60,
               "methods": ["Converse", "GetSession", "DeleteSession", "ListVoices"]}]}

`hash` is `sha256$salt$hex` (the default: the secret has 256 bits of entropy, so a salted
SHA-256 cannot be brute-forced) or `scrypt$n$r$p$salt$hex` (verified in a worker thread;
successful checks are remembered by a keyed digest so each call pays for scrypt at most once).

The interceptor checks every RPC of the Conversation service (health and reflection stay
open for probes), enforces the key's limits, and makes the key's tenant the call's tenant
(`current_principal()`), which the servicer passes to every context-service call.

Limits: an entry's `max_concurrent_calls` / `max_calls_per_minute`; 0 written in the file means
no per-key limit; a field left out gets the gateway's fair-share default (`Limits.fair_share`: a share
of the pod's call limit and a calls-per-minute), so one tenant with a default key cannot take a
pod's every call. `keys create` writes the limits it applied.

Live changes (`KeysWatcher`): the gateway re-reads the keys file when it changes (an in-place
write, a rename, or the symlink swap of a mounted Kubernetes Secret) and on SIGHUP. New calls
see the new set at once; a call already open with a key that is gone, disabled or re-hashed
ends at its next turn with UNAUTHENTICATED (`Authenticator.is_current`). A file that fails to
parse keeps the last good set.

Errors say what to fix and never which part of a key was wrong:
missing/unknown/malformed/disabled key -> UNAUTHENTICATED; a valid key calling a method it
is not allowed -> PERMISSION_DENIED; over a limit -> RESOURCE_EXHAUSTED.
"""

from __future__ import annotations

import asyncio
import collections
import contextvars
import hashlib
import hmac
import inspect
import json
import logging
import math
import os
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from telugu_s2s.gateway.refusal import refuse
from telugu_s2s.security import logctx

log = logging.getLogger(__name__)

KEY_PREFIX = "ts2s_"
KEY_RE = re.compile(r"ts2s_([0-9a-f]{12})\.([A-Za-z0-9_-]{20,128})")
TENANT_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
CONVERSATION_SERVICE = "telugu_s2s.v1.Conversation"
METHODS = ("Converse", "GetSession", "DeleteSession", "ListVoices")
AUTH_REQUIRED = "required"
AUTH_DISABLED = "disabled"

UNAUTHENTICATED_MSG = "missing or invalid API key: send metadata 'authorization: Bearer <key>'"
PERMISSION_DENIED_MSG = "this API key is not allowed to call this method"

_SCRYPT_DEFAULT = (2**14, 8, 1)


class KeysFileError(ValueError):
    """The keys file is missing or malformed; the message names the file and the entry."""


# ---------------------------------------------------------------------- hashing


def hash_key(key: str, kdf: str = "sha256", *, salt: bytes | None = None) -> str:
    """The stored form of `key`: `sha256$salt$hex` or `scrypt$n$r$p$salt$hex`."""
    salt = salt or secrets.token_bytes(16)
    if kdf == "sha256":
        return f"sha256${salt.hex()}${hashlib.sha256(salt + key.encode()).hexdigest()}"
    if kdf == "scrypt":
        n, r, p = _SCRYPT_DEFAULT
        digest = hashlib.scrypt(key.encode(), salt=salt, n=n, r=r, p=p, dklen=32)
        return f"scrypt${n}${r}${p}${salt.hex()}${digest.hex()}"
    raise ValueError(f"unknown kdf {kdf!r}: use sha256 or scrypt")


def _parse_hash(stored: str, where: str) -> tuple[str, tuple[int, ...], bytes, bytes]:
    parts = stored.split("$")
    try:
        if parts[0] == "sha256" and len(parts) == 3:
            return "sha256", (), bytes.fromhex(parts[1]), bytes.fromhex(parts[2])
        if parts[0] == "scrypt" and len(parts) == 6:
            n, r, p = (int(x) for x in parts[1:4])
            return "scrypt", (n, r, p), bytes.fromhex(parts[4]), bytes.fromhex(parts[5])
    except ValueError:
        pass
    raise KeysFileError(f"{where}: 'hash' must be sha256$<salt hex>$<hex> or scrypt$n$r$p$<salt hex>$<hex>")


def new_key() -> tuple[str, str]:
    """A fresh (key id, full key)."""
    key_id = secrets.token_hex(6)
    return key_id, f"{KEY_PREFIX}{key_id}.{secrets.token_urlsafe(32)}"


# ---------------------------------------------------------------------- entries


@dataclass(frozen=True)
class KeyEntry:
    id: str
    tenant: str
    hash: str = field(repr=False)
    # None = not in the file: the gateway's default share (Limits.fair_share); 0 = no per-key limit
    # (the gateway's max_calls still applies)
    max_concurrent_calls: int | None = None
    max_calls_per_minute: int | None = None  # new Conversation RPCs per rolling minute
    methods: frozenset[str] = frozenset(METHODS)
    disabled: bool = False
    kdf: str = field(default="sha256", repr=False)
    kdf_params: tuple[int, ...] = field(default=(), repr=False)
    salt: bytes = field(default=b"", repr=False)
    digest: bytes = field(default=b"", repr=False)

    def verify(self, key: str) -> bool:
        """Constant-time check of the presented key (scrypt blocks: call it off the event loop)."""
        if self.kdf == "sha256":
            candidate = hashlib.sha256(self.salt + key.encode()).digest()
        else:
            n, r, p = self.kdf_params
            candidate = hashlib.scrypt(key.encode(), salt=self.salt, n=n, r=r, p=p, dklen=len(self.digest))
        return hmac.compare_digest(candidate, self.digest)

    def to_json(self) -> dict:
        out: dict = {"id": self.id, "tenant": self.tenant, "hash": self.hash}
        if self.max_concurrent_calls is not None:
            out["max_concurrent_calls"] = self.max_concurrent_calls
        if self.max_calls_per_minute is not None:
            out["max_calls_per_minute"] = self.max_calls_per_minute
        if self.methods != frozenset(METHODS):
            out["methods"] = sorted(self.methods)
        if self.disabled:
            out["disabled"] = True
        return out


_ENTRY_FIELDS = {"id", "tenant", "hash", "max_concurrent_calls", "max_calls_per_minute", "methods", "disabled", "note"}


def parse_entry(raw: Mapping, where: str) -> KeyEntry:
    if not isinstance(raw, Mapping):
        raise KeysFileError(f"{where}: each key entry must be a mapping")
    unknown = set(raw) - _ENTRY_FIELDS
    if unknown:
        raise KeysFileError(f"{where}: unknown fields {sorted(unknown)}; allowed: {sorted(_ENTRY_FIELDS)}")
    key_id = str(raw.get("id", ""))
    if not re.fullmatch(r"[0-9a-f]{12}", key_id):
        raise KeysFileError(f"{where}: 'id' must be the 12 hex characters after 'ts2s_' in the key")
    tenant = str(raw.get("tenant", ""))
    if not TENANT_RE.fullmatch(tenant):
        raise KeysFileError(f"{where} (id {key_id}): 'tenant' must match {TENANT_RE.pattern}")
    stored = str(raw.get("hash", ""))
    kdf, params, salt, digest = _parse_hash(stored, f"{where} (id {key_id})")
    limits = {}
    for name in ("max_concurrent_calls", "max_calls_per_minute"):
        value = raw.get(name)
        if value is None:
            limits[name] = None
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise KeysFileError(f"{where} (id {key_id}): {name!r} must be an integer >= 0 (0 = no limit)")
        limits[name] = value
    methods = raw.get("methods", list(METHODS))
    if not isinstance(methods, list) or not set(methods) <= set(METHODS):
        raise KeysFileError(f"{where} (id {key_id}): 'methods' must be a list drawn from {list(METHODS)}")
    return KeyEntry(
        id=key_id,
        tenant=tenant,
        hash=stored,
        methods=frozenset(methods),
        disabled=bool(raw.get("disabled", False)),
        kdf=kdf,
        kdf_params=params,
        salt=salt,
        digest=digest,
        **limits,
    )


def load_keys(path: str | Path) -> dict[str, KeyEntry]:
    """Read a keys file (JSON, or YAML when PyYAML is installed). Raises KeysFileError."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise KeysFileError(f"cannot read the API keys file {path}: {exc.strerror}") from exc
    try:
        data = json.loads(text) if text.strip() else {"keys": []}
    except json.JSONDecodeError:
        try:
            import yaml
        except ImportError as exc:  # pragma: no cover - pyyaml is a dev dependency
            raise KeysFileError(f"{path}: not valid JSON (install pyyaml for YAML files)") from exc
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise KeysFileError(f"{path}: neither valid JSON nor YAML") from exc
    raw_keys = data.get("keys") if isinstance(data, Mapping) else data
    if not isinstance(raw_keys, list):
        raise KeysFileError(f"{path}: expected {{'keys': [...]}} or a list of key entries")
    entries: dict[str, KeyEntry] = {}
    for i, raw in enumerate(raw_keys):
        entry = parse_entry(raw, f"{path} entry {i}")
        if entry.id in entries:
            raise KeysFileError(f"{path} entry {i}: duplicate key id {entry.id}")
        entries[entry.id] = entry
    return entries


def write_keys(path: str | Path, entries: Iterable[KeyEntry]) -> None:
    """Write the keys file (JSON), readable by its owner only."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps({"keys": [e.to_json() for e in entries]}, indent=2) + "\n")
    tmp.chmod(0o600)
    tmp.replace(path)


# What `keys create` writes unless told otherwise: half of a default pod's 64 calls, and 120
# new calls a minute. Written into the entry, so they can be seen and changed.
DEFAULT_KEY_CONCURRENT_CALLS = 32
DEFAULT_KEY_CALLS_PER_MINUTE = 120


def create_key(
    path: str | Path,
    tenant: str,
    *,
    max_concurrent_calls: int = DEFAULT_KEY_CONCURRENT_CALLS,
    max_calls_per_minute: int = DEFAULT_KEY_CALLS_PER_MINUTE,
    methods: Iterable[str] = METHODS,
    kdf: str = "sha256",
) -> tuple[str, KeyEntry]:
    """Add a new key for `tenant` to the keys file (created if missing); returns (key, entry).

    The key itself is returned once and stored nowhere.
    """
    path = Path(path)
    entries = load_keys(path) if path.exists() else {}
    key_id, key = new_key()
    while key_id in entries:  # pragma: no cover - 48 random bits
        key_id, key = new_key()
    raw = {
        "id": key_id,
        "tenant": tenant,
        "hash": hash_key(key, kdf),
        "max_concurrent_calls": max_concurrent_calls,
        "max_calls_per_minute": max_calls_per_minute,
        "methods": list(methods),
    }
    entry = parse_entry(raw, "new key")
    entries[key_id] = entry
    write_keys(path, entries.values())
    return key, entry


# ---------------------------------------------------------------------- limits


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
    def fair_share(cls, max_calls: int, share: float, calls_per_minute: int) -> "Limits":
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


@dataclass(frozen=True)
class Principal:
    key_id: str  # "" in dev mode
    tenant: str  # "" = the single tenant of dev mode
    entry: KeyEntry | None = field(default=None, repr=False, compare=False)  # the key as admitted


DEV_PRINCIPAL = Principal("", "")
_principal: contextvars.ContextVar[Principal | None] = contextvars.ContextVar("ts2s_principal", default=None)


def current_principal() -> Principal:
    """The authenticated caller of the RPC being served (dev mode: the single tenant "")."""
    return _principal.get() or DEV_PRINCIPAL


class AuthError(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def bearer_key(metadata: Iterable[tuple[str, object]] | None) -> str | None:
    """The bearer token of the `authorization` metadata, or None."""
    for k, v in metadata or ():
        if k.lower() == "authorization":
            value = v.decode(errors="replace") if isinstance(v, bytes) else str(v)
            scheme, _, token = value.strip().partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return token.strip()
            return None
    return None


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
    def from_file(cls, path: str | Path, **kw) -> "Authenticator":
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
                f"this API key is at its limit of {limits.concurrent} concurrent calls; "
                "end a call or retry later",
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


# ---------------------------------------------------------------------- interceptor


def _method_name(full: str) -> tuple[str, str]:
    """'/pkg.Service/Method' -> ('pkg.Service', 'Method')."""
    _, service, method = full.split("/", 2) if full.count("/") >= 2 else ("", "", full)
    return service, method


class AuthInterceptor(grpc.aio.ServerInterceptor):
    """Wraps the Conversation RPCs: request id, then (unless disabled) key, method and limits.

    `authenticator=None` is the explicit local dev mode: every caller is the single tenant "".
    """

    def __init__(self, authenticator: Authenticator | None, on_reject: Callable[[str], None] | None = None) -> None:
        self.authenticator = authenticator
        self.on_reject = on_reject or (lambda code: None)

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        service, method = _method_name(handler_call_details.method)
        if handler is None or service != CONVERSATION_SERVICE:
            return handler  # health, reflection: open for probes
        if handler.request_streaming and handler.response_streaming:
            return handler._replace(stream_stream=self._wrap(handler.stream_stream, method, stream=True, reads=True))
        if handler.request_streaming:
            return handler._replace(stream_unary=self._wrap(handler.stream_unary, method, stream=True, reads=True))
        if handler.response_streaming:
            return handler._replace(unary_stream=self._wrap(handler.unary_stream, method, stream=True))
        return handler._replace(unary_unary=self._wrap(handler.unary_unary, method, stream=False))

    async def _enter(self, context, method: str, stream: bool, reads: bool) -> KeyEntry | None:
        metadata = context.invocation_metadata()
        request_id = logctx.start_request(metadata)
        try:
            await context.send_initial_metadata((("x-request-id", request_id),))
        except Exception:  # noqa: BLE001 - the call may already be gone
            pass
        if self.authenticator is None:
            return None
        try:
            entry = await self.authenticator.authenticate(bearer_key(metadata))
            self.authenticator.authorize(entry, method)
            self.authenticator.admit(entry, stream=stream)
        except AuthError as exc:
            self.on_reject(exc.code.name)
            log.info("rpc rejected", extra={"method": method, "code": exc.code.name})
            if reads:
                await refuse(context, exc.code, exc.message)
            await context.abort(exc.code, exc.message)
            raise AssertionError("unreachable")  # pragma: no cover - abort raises
        _principal.set(Principal(entry.id, entry.tenant, entry))
        logctx.set_fields(tenant=entry.tenant, key_id=entry.id)
        return entry

    def _exit(self, entry: KeyEntry | None, stream: bool) -> None:
        if entry is not None and stream and self.authenticator is not None:
            self.authenticator.release(entry)

    def _wrap(self, behavior, method: str, *, stream: bool, reads: bool = False):
        """`stream`: the RPC holds a concurrency slot; `reads`: the caller streams requests."""
        if inspect.isasyncgenfunction(behavior):

            async def gen_wrapper(request, context):
                entry = await self._enter(context, method, stream, reads)
                try:
                    async for item in behavior(request, context):
                        yield item
                finally:
                    self._exit(entry, stream)

            return gen_wrapper

        async def wrapper(request, context):
            entry = await self._enter(context, method, stream, reads)
            try:
                return await behavior(request, context)
            finally:
                self._exit(entry, stream)

        return wrapper


def build_authenticator(mode: str, keys_file: str, defaults: Limits = Limits()) -> Authenticator | None:
    """From the gateway config: None = explicit dev mode (loud WARNING); else the loaded keys."""
    if mode == AUTH_DISABLED:
        log.warning(
            "API key authentication is DISABLED (TS2S_GATEWAY_AUTH=disabled): every caller is "
            "trusted and shares one tenant. Local development only; never expose this port."
        )
        return None
    if mode != AUTH_REQUIRED:
        raise KeysFileError(f"TS2S_GATEWAY_AUTH={mode!r}: use 'required' (default) or 'disabled' (local dev only)")
    if not keys_file:
        raise KeysFileError(
            "API keys are required but TS2S_GATEWAY_API_KEYS_FILE is not set: point it at a keys file "
            "(create one with `telugu-s2s keys create --tenant NAME --file keys.json`), or set "
            "TS2S_GATEWAY_AUTH=disabled for local development"
        )
    auth = Authenticator.from_file(keys_file, defaults=defaults)
    tenants = sorted({e.tenant for e in auth.entries.values()})
    log.info("API keys loaded", extra={"keys": len(auth.entries), "tenants": len(tenants)})
    if not auth.entries:
        log.warning("the API keys file holds no keys: every call will be refused")
    return auth


# ---------------------------------------------------------------------- live reload


class KeysWatcher:
    """Re-reads the keys file when it changes, and on `request_reload()` (SIGHUP).

    A change is any change of the file's resolved path, inode, size or mtime, checked every
    `interval_s`: an in-place write, an atomic rename, and the `..data` symlink swap by which
    Kubernetes updates a mounted Secret all show. A file that fails to parse keeps the last
    good set (one ERROR log line per bad version, `on_result("error")`).
    """

    def __init__(self, path: str | Path, auth: Authenticator, interval_s: float = 2.0,
                 on_result: Callable[[str], None] | None = None) -> None:
        self.path = Path(path)
        self.auth = auth
        self.interval_s = interval_s
        self.on_result = on_result or (lambda result: None)
        self._seen = self._signature()
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None

    def _signature(self) -> tuple | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return os.path.realpath(self.path), st.st_ino, st.st_size, st.st_mtime_ns

    def request_reload(self) -> None:
        self._wake.set()

    def check(self, force: bool = False) -> str:
        """Reload if the file changed (or `force`): "reloaded", "unchanged" or "error"."""
        sig = self._signature()
        if not force and sig == self._seen:
            return "unchanged"
        self._seen = sig
        try:
            entries = load_keys(self.path)
        except KeysFileError as exc:
            log.error("API keys file not reloaded, the last good keys stay in force: %s", exc)
            self.on_result("error")
            return "error"
        self.auth.replace_entries(entries)
        log.info("API keys reloaded", extra={"keys": len(entries), "tenants": len({e.tenant for e in entries.values()})})
        self.on_result("ok")
        return "reloaded"

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self.interval_s)
            except TimeoutError:
                pass
            force = self._wake.is_set()
            self._wake.clear()
            self.check(force=force)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="keys-watcher")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
