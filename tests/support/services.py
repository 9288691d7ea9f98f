"""Run a project service as a real subprocess: `python -m telugu_s2s.<svc>`.

    svc = start_service("telugu_s2s.context", port=free_port(), env={...}, log_path=tmp_path / "ctx.log")
    ... grpc.aio.insecure_channel(svc.target) ...
    assert svc.stop() == 0        # SIGTERM, drain, exit code

`PYTHONPATH` points at this checkout's src/ (computed from this file), so the code under
test is the working tree's, whatever the virtualenv's editable install points at.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.support.health import SERVING, wait_health

REPO_ROOT = Path(__file__).resolve().parents[2]
SRC = REPO_ROOT / "src"


def service_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """The current environment plus PYTHONPATH=<repo>/src and unbuffered output."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(SRC), str(REPO_ROOT)])
    env["PYTHONUNBUFFERED"] = "1"
    env.update(extra or {})
    return env


@dataclass
class ServiceProcess:
    module: str
    proc: subprocess.Popen[bytes]
    target: str
    log_path: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, wait up to `timeout` (then SIGKILL); return the exit code."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return int(self.proc.returncode)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def start_service(
    module: str,
    *,
    port: int,
    env: Mapping[str, str] | None = None,
    args: Sequence[str] = (),
    log_path: Path,
    host: str = "127.0.0.1",
    health_service: str = "",
    timeout: float = 30.0,
    wait: bool = True,
) -> ServiceProcess:
    """Start `python -m <module> *args`, stdout+stderr to `log_path`; with wait=True,
    return once gRPC health on host:port is SERVING. On failure the process is stopped
    and the error carries its log."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            env=service_env(env),
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    svc = ServiceProcess(module, proc, f"{host}:{port}", log_path)
    if wait:
        try:
            wait_health(svc.target, SERVING, service=health_service, timeout=timeout, alive=svc.alive)
        except (TimeoutError, RuntimeError) as exc:
            code = svc.stop(timeout=5)
            raise RuntimeError(f"{module} did not become SERVING ({exc}); exit code {code}; log:\n"
                               f"{svc.log_text()[-4000:]}") from None
    return svc
