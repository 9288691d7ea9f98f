"""`python -m telugu_s2s.context` as a real process: serves, drains on SIGTERM, exits 0."""

from __future__ import annotations

import json
import subprocess
import sys
import urllib.request
from pathlib import Path

import grpc
import pytest

from telugu_s2s.v1 import context_pb2, context_pb2_grpc

from tests.support.ports import free_ports
from tests.support.redis import RedisFactory
from tests.support.services import service_env, start_service

pytestmark = pytest.mark.e2e


def _env(port: int, metrics_port: int, url: str) -> dict[str, str]:
    return {
        "TS2S_CONTEXT_HOST": "127.0.0.1",
        "TS2S_CONTEXT_PORT": str(port),
        "TS2S_CONTEXT_METRICS_HOST": "127.0.0.1",
        "TS2S_CONTEXT_METRICS_PORT": str(metrics_port),
        "TS2S_CONTEXT_REDIS_URL": url,
        "TS2S_CONTEXT_DRAIN_GRACE_S": "2",
    }


def test_serves_against_redis_and_stops_on_sigterm(redis_server_factory: RedisFactory, tmp_path: Path) -> None:
    redis_server = redis_server_factory()
    port, metrics_port = free_ports(2)
    svc = start_service(
        "telugu_s2s.context", port=port, env=_env(port, metrics_port, redis_server.url),
        log_path=tmp_path / "context.log", health_service="telugu_s2s.v1.ContextStore",
    )
    try:
        with grpc.insecure_channel(svc.target) as channel:
            stub = context_pb2_grpc.ContextStoreStub(channel)
            rec = stub.CreateSession(context_pb2.CreateSessionRequest(voice="lakshmi", tenant="t"))
            ref = context_pb2.SessionRef(session_id=rec.session_id, tenant="t")
            stub.AppendTurn(context_pb2.AppendTurnRequest(session=ref, turn=context_pb2.Turn(played_ms=5)))
            ctx = stub.GetContext(context_pb2.GetContextRequest(session=ref))
            assert ctx.session.voice == "lakshmi" and [t.played_ms for t in ctx.turns] == [5]
        body = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).read().decode()
        assert 'telugu_s2s_context_redis_op_seconds_count{op="append"} 1.0' in body
        assert 'telugu_s2s_context_rpcs_total{code="OK",method="CreateSession"} 1.0' in body
    finally:
        code = svc.stop()
    assert code == 0, svc.log_text()
    lines = [json.loads(line) for line in svc.log_text().splitlines() if line.startswith("{")]
    msgs = [rec["msg"] for rec in lines]
    assert "context draining" in msgs and "context stopped" in msgs


def test_memory_backend_warns_about_replicas(tmp_path: Path) -> None:
    port, metrics_port = free_ports(2)
    svc = start_service(
        "telugu_s2s.context", port=port, env=_env(port, 0, "memory://"), log_path=tmp_path / "context.log"
    )
    assert svc.stop() == 0
    assert "do NOT run more than one replica" in svc.log_text()


def test_config_error_exits_2_with_the_variable_name() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "telugu_s2s.context"],
        env=service_env({"TS2S_CONTEXT_REDIS_URL": "redis://:pw@localhost:6379"}),
        capture_output=True, text=True, timeout=30,
    )
    assert proc.returncode == 2
    assert "TS2S_CONTEXT_REDIS_PASSWORD" in proc.stderr
