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

Modules: `keys` (key format, hashing, the keys file), `limits` (per-key limits and the
`Authenticator`), `interceptor` (the gRPC interceptor and the caller's `Principal`), `watcher`
(live reload).
"""

from telugu_s2s.gateway.auth.interceptor import (
    DEV_PRINCIPAL,
    AuthInterceptor,
    NoPrincipal,
    Principal,
    bearer_key,
    build_authenticator,
    current_principal,
)
from telugu_s2s.gateway.auth.keys import (
    AUTH_DISABLED,
    AUTH_REQUIRED,
    CONVERSATION_SERVICE,
    DEFAULT_KEY_CALLS_PER_MINUTE,
    DEFAULT_KEY_CONCURRENT_CALLS,
    KEY_PREFIX,
    KEY_RE,
    METHODS,
    PERMISSION_DENIED_MSG,
    UNAUTHENTICATED_MSG,
    AuthError,
    KeyEntry,
    KeysFileError,
    create_key,
    hash_key,
    load_keys,
    new_key,
    parse_entry,
    write_keys,
)
from telugu_s2s.gateway.auth.limits import Authenticator, Limits, RateWindow
from telugu_s2s.gateway.auth.watcher import KeysWatcher

__all__ = [
    "AUTH_DISABLED",
    "AUTH_REQUIRED",
    "CONVERSATION_SERVICE",
    "DEFAULT_KEY_CALLS_PER_MINUTE",
    "DEFAULT_KEY_CONCURRENT_CALLS",
    "DEV_PRINCIPAL",
    "KEY_PREFIX",
    "KEY_RE",
    "METHODS",
    "PERMISSION_DENIED_MSG",
    "UNAUTHENTICATED_MSG",
    "AuthError",
    "AuthInterceptor",
    "Authenticator",
    "KeyEntry",
    "KeysFileError",
    "KeysWatcher",
    "Limits",
    "NoPrincipal",
    "Principal",
    "RateWindow",
    "bearer_key",
    "build_authenticator",
    "create_key",
    "current_principal",
    "hash_key",
    "load_keys",
    "new_key",
    "parse_entry",
    "write_keys",
]
