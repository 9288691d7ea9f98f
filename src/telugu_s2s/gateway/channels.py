"""gRPC channel options of the gateway's downstream channels.

gRPC's default reconnect backoff grows to 120 s: after a downstream restart, the gateway
could keep failing for minutes although the service is back. Capping it at one second
makes a restarted codec, context service or Triton usable within about a second.

Replicas: a target may name several servers, as a list (`ipv4:10.0.0.5:50052,10.0.0.6:50052`,
what `telugu-s2s up --codec-replicas N` uses) or as a DNS name with one address per pod (a
headless Service, `dns:///codec.ns.svc.cluster.local:50052`, what the Helm chart uses). The
`round_robin` policy spreads the calls over every address that is up and skips one whose
connection failed, so a dead replica's share moves to the others.
"""

from __future__ import annotations

RECONNECT_OPTIONS: list[tuple[str, int]] = [
    ("grpc.initial_reconnect_backoff_ms", 100),
    ("grpc.min_reconnect_backoff_ms", 100),
    ("grpc.max_reconnect_backoff_ms", 1000),
]


BALANCING_OPTIONS: list[tuple[str, object]] = [
    ("grpc.lb_policy_name", "round_robin"),
    # A scaled-up Deployment's new pods are found at the next re-resolution.
    ("grpc.dns_min_time_between_resolutions_ms", 5000),
]


def channel_options(extra: list[tuple[str, object]] | None = None) -> list[tuple[str, object]]:
    return [*RECONNECT_OPTIONS, *BALANCING_OPTIONS, *(extra or [])]
