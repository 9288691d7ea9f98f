"""Prometheus metrics of the gateway (prefix telugu_s2s_gateway_)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Resolves 5-500 ms finely, with a tail to 10 s.
LATENCY_BUCKETS = (
    0.005,
    0.01,
    0.02,
    0.03,
    0.04,
    0.05,
    0.075,
    0.1,
    0.125,
    0.15,
    0.2,
    0.25,
    0.3,
    0.4,
    0.5,
    0.75,
    1.0,
    2.0,
    5.0,
    10.0,
)

KEYS_RELOADS = Counter(
    "telugu_s2s_gateway_keys_reloads_total",
    "Reloads of the API keys file after it changed or on SIGHUP, by result (ok, error: the last good keys stay).",
    ["result"],
)
AUTH_REJECTED = Counter(
    "telugu_s2s_gateway_auth_rejected_total",
    "Public RPCs refused by API-key checks, by status (UNAUTHENTICATED, PERMISSION_DENIED, RESOURCE_EXHAUSTED).",
    ["code"],
)
RESPONSE_LATENCY = Histogram(
    "telugu_s2s_gateway_response_latency_seconds",
    "End-of-speech decision -> first reply audio chunk written to the caller.",
    buckets=LATENCY_BUCKETS,
)
VOICE_TO_VOICE = Histogram(
    "telugu_s2s_gateway_voice_to_voice_seconds",
    "End of the last voiced input frame -> first reply audio chunk written (response latency + hangover).",
    buckets=LATENCY_BUCKETS,
)
BARGE_IN_STOP = Histogram(
    "telugu_s2s_gateway_barge_in_stop_seconds",
    "Speech-start decision during a reply (or INTERRUPT) -> last reply chunk written.",
    buckets=LATENCY_BUCKETS,
)
STAGE = Histogram(
    "telugu_s2s_gateway_stage_seconds",
    "Per-stage latency of a reply: encode_flush, context_fetch, first_frame, first_decode.",
    ["stage"],
    buckets=LATENCY_BUCKETS,
)
ACTIVE_CALLS = Gauge("telugu_s2s_gateway_active_calls", "Converse calls in progress on this pod.")
CALLS = Counter("telugu_s2s_gateway_calls_total", "Converse calls ended, by gRPC status code.", ["code"])
TURNS = Counter(
    "telugu_s2s_gateway_turns_total",
    "User turns, by outcome: done, interrupted, failed, too_short.",
    ["outcome"],
)
TURN_ENDS = Counter(
    "telugu_s2s_gateway_turn_ends_total",
    "User turns ended, by what ended them: turn_model, max_wait, silence or forced.",
    ["reason"],
)
PREEMPTIVE = Counter(
    "telugu_s2s_gateway_preemptive_replies_total",
    "Replies prepared before the end of a turn was decided, by outcome: used (the turn ended "
    "where it was started), dropped (the caller went on, or the turn ended elsewhere).",
    ["outcome"],
)
INTERRUPTIONS = Counter(
    "telugu_s2s_gateway_interruptions_total",
    "Replies stopped early, by source: barge_in or control.",
    ["source"],
)
ERRORS = Counter(
    "telugu_s2s_gateway_errors_total",
    "Calls ended with an error status, by gRPC status code.",
    ["code"],
)
INBAND_ERRORS = Counter(
    "telugu_s2s_gateway_inband_errors_total",
    "In-band (non-fatal) Error messages sent, by error code.",
    ["code"],
)
GENERATIONS = Counter(
    "telugu_s2s_gateway_generations_total",
    "S2S generation requests by outcome: done, failed, cancelled (barge-in, caller gone, call ended).",
    ["outcome"],
)
ACTIVE_GENERATIONS = Gauge(
    "telugu_s2s_gateway_active_generations",
    "S2S generation requests in progress on this pod.",
)
