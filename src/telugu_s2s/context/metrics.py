"""Prometheus metrics of the context service (prefix `telugu_s2s_context_`).

Labels are low-cardinality: the Redis operation name, the gRPC method and status code,
an error class. Never a session id or a tenant.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

# Resolves 0.5 ms .. 2.5 s, with steps through 10-500 ms.
LATENCY_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.075,
    0.1,
    0.15,
    0.2,
    0.3,
    0.5,
    1.0,
    2.5,
)

REDIS_OP_SECONDS = Histogram(
    "telugu_s2s_context_redis_op_seconds",
    "Latency of one Redis operation (one script or command round trip), by operation.",
    ["op"],
    buckets=LATENCY_BUCKETS,
)
REDIS_ERRORS = Counter(
    "telugu_s2s_context_redis_errors_total",
    "Redis operations that failed, by operation and error class "
    "(unavailable = connection refused/lost or timeout, other = anything else).",
    ["op", "error"],
)
RPC_SECONDS = Histogram(
    "telugu_s2s_context_rpc_seconds",
    "Time to answer one ContextStore call, by method.",
    ["method"],
    buckets=LATENCY_BUCKETS,
)
RPCS = Counter(
    "telugu_s2s_context_rpcs_total",
    "ContextStore calls answered, by method and gRPC status code.",
    ["method", "code"],
)
HEALTH_TRANSITIONS = Counter(
    "telugu_s2s_context_health_transitions_total",
    "Changes of the service health from the background store probe, by new state.",
    ["state"],
)
