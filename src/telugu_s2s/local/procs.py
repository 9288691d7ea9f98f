"""Start, health-check and stop service processes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from telugu_s2s.common.children import die_with_parent


class StackError(RuntimeError):
    """Something in the local stack could not start; the message says what to do."""


def port_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def check_ports_free(host: str, ports: dict[str, int]) -> None:
    taken = [f"{name} port {port}" for name, port in ports.items() if port and not port_free(host, port)]
    if taken:
        raise StackError(
            "already in use on "
            + host
            + ": "
            + ", ".join(taken)
            + ". Stop whatever holds them (is another stack running?) or pick other ports with the flags."
        )


def grpc_health(target: str, timeout: float = 1.0, service: str = "") -> str:
    """SERVING / NOT_SERVING / UNKNOWN / UNREACHABLE."""
    try:
        with grpc.insecure_channel(target) as channel:
            stub = health_pb2_grpc.HealthStub(channel)
            resp = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=timeout)
            return health_pb2.HealthCheckResponse.ServingStatus.Name(resp.status)
    except grpc.RpcError:
        return "UNREACHABLE"


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log_path: Path

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, timeout: float = 15.0) -> int | None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(5)
        return self.popen.returncode


def spawn(name: str, args: list[str], env: dict[str, str], log_dir: Path) -> Proc:
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{name}.log"
    log = open(log_path, "ab")
    full_env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
    # Run the services from this checkout's sources (matters when several checkouts share a venv).
    src = Path(__file__).resolve().parents[2]
    if (src / "telugu_s2s").is_dir():
        full_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(src), os.environ.get("PYTHONPATH", "")) if p)
    popen = subprocess.Popen(
        args, stdout=log, stderr=subprocess.STDOUT, env=full_env, start_new_session=True, preexec_fn=die_with_parent()
    )
    log.close()
    return Proc(name, popen, log_path)


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


def wait_grpc_serving(proc: Proc, target: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    status = "UNREACHABLE"
    while time.monotonic() < deadline:
        if not proc.alive():
            raise StackError(
                f"{proc.name} exited with code {proc.popen.returncode} while starting. "
                f"Last lines of {proc.log_path}:\n{tail(proc.log_path)}"
            )
        status = grpc_health(target)
        if status == "SERVING":
            return
        time.sleep(0.2)
    raise StackError(
        f"{proc.name} at {target} was not SERVING after {timeout:.0f} s (last: {status}). "
        f"Last lines of {proc.log_path}:\n{tail(proc.log_path)}"
    )


def wait_http_ok(proc: Proc, url: str, timeout: float) -> None:
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not proc.alive():
            raise StackError(
                f"{proc.name} exited with code {proc.popen.returncode} while starting. "
                f"Last lines of {proc.log_path}:\n{tail(proc.log_path)}"
            )
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    raise StackError(f"{proc.name} did not answer {url} within {timeout:.0f} s; see {proc.log_path}")
