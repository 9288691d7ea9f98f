"""A short hypothesis run of random Converse input against the real stack.

The bulk of the fuzzing runs in-process (tests/unit/gateway/test_fuzz.py); this checks the
same properties through the real processes: every call ends with a defined status (the
gateway's own calls_total counts none as INTERNAL or UNKNOWN) and the gateway stays SERVING.
"""

from __future__ import annotations

import grpc
import pytest
from hypothesis import HealthCheck, given, settings

from telugu_s2s.local.procs import grpc_health
from telugu_s2s.v1 import conversation_pb2_grpc as pb_grpc
from tests.e2e.live import gateway_metrics_url, scrape
from tests.unit.gateway.fuzz_strategies import CLIENT_WRITE_RACE, DEFINED_ENDINGS, audio_calls, message_sequences

pytestmark = pytest.mark.e2e

E2E_FUZZ = settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
DEADLINE_S = 30.0  # liveness: a call that has not ended by then is a hang


def ended_by_code(stack) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in scrape(gateway_metrics_url(stack)).items():
        name, *labels = key.split("|")
        if name == "telugu_s2s_gateway_calls_total":
            out[dict(label.split("=", 1) for label in labels)["code"]] = value
    return out


def call(stub, messages) -> tuple[grpc.StatusCode, str]:
    try:
        for _ in stub.Converse(iter(messages), timeout=DEADLINE_S):
            pass
    except grpc.RpcError as exc:
        return exc.code(), exc.details() or ""
    return grpc.StatusCode.OK, ""


def test_random_input_against_the_real_gateway(stack):
    before = ended_by_code(stack)
    with grpc.insecure_channel(stack.cfg.gateway_target) as channel:
        stub = pb_grpc.ConversationStub(channel)

        @E2E_FUZZ
        @given(messages=message_sequences(max_size=8))
        def sequences(messages):
            code, details = call(stub, messages)
            if (code, details) != CLIENT_WRITE_RACE:
                assert code in DEFINED_ENDINGS - {grpc.StatusCode.CANCELLED}, (code, details, messages)

        @E2E_FUZZ
        @given(messages=audio_calls())
        def audio(messages):
            code, details = call(stub, messages)
            if (code, details) != CLIENT_WRITE_RACE:
                assert code in (grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT), (code, details)

        sequences()
        audio()
    after = ended_by_code(stack)
    grew = {k: after[k] - before.get(k, 0) for k in after if after[k] != before.get(k, 0)}
    assert sum(grew.values()) >= 30, grew
    assert set(grew) <= {c.name for c in DEFINED_ENDINGS}, grew
    assert grpc_health(stack.cfg.gateway_target) == "SERVING"
