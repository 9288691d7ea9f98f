"""`python -m telugu_s2s.common.healthcheck` against a real in-process gRPC server."""

from __future__ import annotations

import os
import subprocess
import sys
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from telugu_s2s.common import healthcheck

SRC = Path(__file__).resolve().parents[3] / "src"


@pytest.fixture()
def health_server():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield servicer, f"127.0.0.1:{port}"
    server.stop(None)


def test_serving_and_not_serving(health_server) -> None:
    servicer, target = health_server
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    assert healthcheck.check(target) == (True, f"{target}: SERVING")
    servicer.set("", health_pb2.HealthCheckResponse.NOT_SERVING)
    ok, detail = healthcheck.check(target)
    assert not ok and "NOT_SERVING" in detail
    assert healthcheck.main([target]) == 1


def test_named_service(health_server) -> None:
    servicer, target = health_server
    servicer.set("telugu_s2s.v1.Codec", health_pb2.HealthCheckResponse.SERVING)
    assert healthcheck.main([target, "--service", "telugu_s2s.v1.Codec"]) == 0
    ok, detail = healthcheck.check(target, "telugu_s2s.v1.Other")
    assert not ok and "NOT_FOUND" in detail


def test_unreachable_is_unhealthy() -> None:
    ok, detail = healthcheck.check(f"127.0.0.1:{free_port()}", timeout_s=0.5)
    assert not ok
    assert "UNAVAILABLE" in detail or "DEADLINE_EXCEEDED" in detail


def test_module_entry_point_exit_code(health_server) -> None:
    servicer, target = health_server
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    proc = subprocess.run([sys.executable, "-m", "telugu_s2s.common.healthcheck", target],
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "SERVING" in proc.stdout


def free_port() -> int:
    """A port that was free a moment ago (bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
