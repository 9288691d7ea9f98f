"""`python -m telugu_s2s.codec` as a real process: health, Info, and a clear startup error."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from telugu_s2s.v1 import codec_pb2, codec_pb2_grpc

SRC = Path(__file__).resolve().parents[3] / "src"
pytestmark = pytest.mark.e2e


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(tmp_path: Path, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TS2S_")}
    env.update(
        PYTHONPATH=str(SRC), TORCH_HOME=str(tmp_path / "torch"),  # empty hub cache
        TS2S_CODEC_CHECKPOINT_DIR=str(tmp_path / "no-checkpoint"), TS2S_CODEC_HOST="127.0.0.1",
        TS2S_CODEC_METRICS_PORT="0",
    )
    env.update(extra)
    return env


def test_service_process_serves_with_random_weights(tmp_path):
    port = _free_port()
    env = _env(tmp_path, TS2S_CODEC_PORT=str(port), TS2S_CODEC_ALLOW_RANDOM_WEIGHTS="1")
    proc = subprocess.Popen([sys.executable, "-m", "telugu_s2s.codec"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            health = health_pb2_grpc.HealthStub(channel)
            status = None
            for _ in range(600):  # SERVING only after weights load and warm-up
                try:
                    status = health.Check(health_pb2.HealthCheckRequest(), timeout=1).status
                    if status == health_pb2.HealthCheckResponse.SERVING:
                        break
                except grpc.RpcError:
                    if proc.poll() is not None:
                        pytest.fail(f"codec exited: {proc.stderr.read()}")
                time.sleep(0.1)
            assert status == health_pb2.HealthCheckResponse.SERVING
            info = codec_pb2_grpc.CodecStub(channel).Info(codec_pb2.InfoRequest(), timeout=5)
            assert info.random_weights and info.weights == "random"
            assert (info.sample_rate_hz, info.samples_per_frame, info.n_codebooks) == (24000, 320, 2)
            assert info.bandwidth_kbps == pytest.approx(1.5)
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert '"level": "warning"' in err and "RANDOM" in err


def test_service_process_without_weights_fails_clearly(tmp_path):
    env = _env(tmp_path, TS2S_CODEC_PORT=str(_free_port()))
    proc = subprocess.run([sys.executable, "-m", "telugu_s2s.codec"], env=env, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 2
    assert "TS2S_CODEC_ALLOW_RANDOM_WEIGHTS=1" in proc.stderr
