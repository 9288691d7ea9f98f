"""gRPC channel options of the gateway's downstream channels.

gRPC's default reconnect backoff grows to 120 s: after a downstream restart, the gateway
could keep failing for minutes although the service is back. Capping it at one second
makes a restarted codec, context service or Triton usable within about a second.
"""

from __future__ import annotations

RECONNECT_OPTIONS: list[tuple[str, int]] = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]


def channel_options(extra: list[tuple[str, object]] | None = None) -> list[tuple[str, object]]:
    return [*RECONNECT_OPTIONS, *(extra or [])]
