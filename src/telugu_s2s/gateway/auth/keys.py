"""API keys: their format, their hashes, and the keys file (see the package docstring)."""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from telugu_s2s.v1 import conversation_pb2

_CONVERSATION = conversation_pb2.DESCRIPTOR.services_by_name["Conversation"]

KEY_PREFIX = "ts2s_"
KEY_RE = re.compile(r"ts2s_([0-9a-f]{12})\.([A-Za-z0-9_-]{20,128})")
TENANT_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,62}")
# The service the keys guard and its methods, as the proto declares them.
CONVERSATION_SERVICE = _CONVERSATION.full_name
METHODS = tuple(m.name for m in _CONVERSATION.methods)
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
    limits: dict[str, int | None] = {}
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


class AuthError(Exception):
    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
