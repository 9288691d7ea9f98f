"""`telugu-s2s keys create|list|revoke`: manage the gateway's API keys file.

The key is printed once, on stdout, by `create`; the file keeps only its salted hash.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from telugu_s2s.gateway.auth import (
    DEFAULT_KEY_CALLS_PER_MINUTE,
    DEFAULT_KEY_CONCURRENT_CALLS,
    METHODS,
    KeysFileError,
    create_key,
    load_keys,
    write_keys,
)


def add_parser(sub) -> None:
    keys = sub.add_parser("keys", help="create, list or revoke gateway API keys (keys file)")
    ksub = keys.add_subparsers(dest="keys_command", required=True)

    c = ksub.add_parser("create", help="add a key for a tenant; prints the key once")
    c.add_argument("--tenant", required=True, help="tenant the key's sessions belong to (a-z, 0-9, _ and -)")
    c.add_argument("--file", type=Path, required=True, help="keys file (JSON; created if missing)")
    c.add_argument(
        "--max-concurrent-calls",
        type=int,
        default=DEFAULT_KEY_CONCURRENT_CALLS,
        help=f"open calls at once (default {DEFAULT_KEY_CONCURRENT_CALLS}; 0 = no per-key limit)",
    )
    c.add_argument(
        "--max-calls-per-minute",
        type=int,
        default=DEFAULT_KEY_CALLS_PER_MINUTE,
        help=f"new RPCs per rolling minute (default {DEFAULT_KEY_CALLS_PER_MINUTE}; 0 = no per-key limit)",
    )
    c.add_argument(
        "--methods", default=",".join(METHODS), help="comma-separated methods the key may call (default: all)"
    )
    c.add_argument("--kdf", choices=("sha256", "scrypt"), default="sha256", help="how the key is hashed")
    c.set_defaults(func=cmd_create)

    ls = ksub.add_parser("list", help="list key ids, tenants and limits (never the keys)")
    ls.add_argument("--file", type=Path, required=True)
    ls.set_defaults(func=cmd_list)

    rv = ksub.add_parser("revoke", help="remove a key by its id")
    rv.add_argument("--file", type=Path, required=True)
    rv.add_argument("--id", required=True, help="key id (the 12 hex characters after 'ts2s_')")
    rv.set_defaults(func=cmd_revoke)


def cmd_create(a: argparse.Namespace) -> int:
    methods = [m.strip() for m in a.methods.split(",") if m.strip()]
    if a.max_concurrent_calls < 0 or a.max_calls_per_minute < 0:
        print("error: limits must be >= 0 (0 = no limit)", file=sys.stderr)
        return 2
    try:
        key, entry = create_key(
            a.file,
            a.tenant,
            max_concurrent_calls=a.max_concurrent_calls,
            max_calls_per_minute=a.max_calls_per_minute,
            methods=methods,
            kdf=a.kdf,
        )
    except KeysFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(key)
    print(
        f"key id {entry.id} for tenant {entry.tenant!r} added to {a.file} (limits: "
        f"{entry.max_concurrent_calls or 'no'} concurrent calls, {entry.max_calls_per_minute or 'no'} calls per "
        "minute). The key above is shown only now: give it to the client, it is not stored.",
        file=sys.stderr,
    )
    return 0


def cmd_list(a: argparse.Namespace) -> int:
    try:
        entries = load_keys(a.file)
    except KeysFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for e in entries.values():
        shown = lambda v: "default" if v is None else (v or "-")  # noqa: E731
        print(
            f"{e.id}  tenant={e.tenant}  concurrent={shown(e.max_concurrent_calls)}  "
            f"per_minute={shown(e.max_calls_per_minute)}  methods={','.join(sorted(e.methods))}"
            + ("  DISABLED" if e.disabled else "")
        )
    return 0


def cmd_revoke(a: argparse.Namespace) -> int:
    try:
        entries = load_keys(a.file)
    except KeysFileError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if entries.pop(a.id, None) is None:
        print(f"error: no key with id {a.id} in {a.file}", file=sys.stderr)
        return 1
    write_keys(a.file, entries.values())
    print(
        f"key {a.id} removed; running gateways reading this file refuse it within seconds "
        "(new calls at once, open calls at their next turn)",
        file=sys.stderr,
    )
    return 0
