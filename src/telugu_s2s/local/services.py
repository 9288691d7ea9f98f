"""The local stack's processes behind one `Service` protocol: redis-server, tritonserver and the
Python services are started, stopped, killed and watched the same way."""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from telugu_s2s.local.procs import Proc, python_module, spawn

if TYPE_CHECKING:
    from telugu_s2s.context.redis_local import LocalRedis
    from telugu_s2s.s2s.triton_local import LocalTriton


class Service(Protocol):
    name: str

    def start(self) -> None:
        """Start the process and return once it is ready (StackError or the launcher's own error if not)."""

    def stop(self) -> int | None:
        """SIGTERM and wait (the service drains); SIGKILL after a grace. Returns the exit code."""

    def kill(self) -> None:
        """SIGKILL (a crash: no drain, no cleanup) and wait until it is gone."""

    def wait(self, timeout: float) -> int | None:
        """Wait for the process to exit (subprocess.TimeoutExpired after `timeout`); its exit code."""

    def pid(self) -> int | None:
        """The main process id while it runs, else None."""

    def alive(self) -> bool: ...


def _alive(popen: subprocess.Popen | None) -> bool:
    return popen is not None and popen.poll() is None


class _PopenService:
    """pid / alive / wait / kill from the current `subprocess.Popen`."""

    name: str

    def _popen(self) -> subprocess.Popen | None:
        raise NotImplementedError

    def pid(self) -> int | None:
        popen = self._popen()
        return popen.pid if popen is not None and _alive(popen) else None

    def alive(self) -> bool:
        return _alive(self._popen())

    def wait(self, timeout: float) -> int | None:
        popen = self._popen()
        return popen.wait(timeout) if popen is not None else None

    def kill(self) -> None:
        popen = self._popen()
        if _alive(popen):
            assert popen is not None
            popen.kill()
            popen.wait(10)


class PythonService(_PopenService):
    """`python -m <module>` with the environment `env()` builds, ready when `ready(proc)` returns."""

    def __init__(
        self,
        name: str,
        module: str,
        env: Callable[[], dict[str, str]],
        ready: Callable[[Proc], None],
        log_dir: Path,
    ) -> None:
        self.name, self.module, self._env, self._ready, self.log_dir = name, module, env, ready, log_dir
        self.proc: Proc | None = None

    def _popen(self) -> subprocess.Popen | None:
        return self.proc.popen if self.proc is not None else None

    def start(self) -> None:
        self.proc = spawn(self.name, python_module(self.module), self._env(), self.log_dir)
        self._ready(self.proc)

    def stop(self) -> int | None:
        return self.proc.stop() if self.proc is not None else None


class RedisService(_PopenService):
    """redis-server with its data (AOF) in `data_dir`; survives restarts."""

    name = "redis"

    def __init__(self, data_dir: Path, port: int) -> None:
        from telugu_s2s.context.redis_local import LocalRedis

        self.redis: LocalRedis = LocalRedis(data_dir, port=port, appendonly=True)

    def _popen(self) -> subprocess.Popen | None:
        return self.redis.proc

    @property
    def url(self) -> str:
        return self.redis.url

    def start(self) -> None:
        self.redis.start()
        self.redis.wait_ready(20)

    def stop(self) -> int | None:
        return self.redis.stop()

    def kill(self) -> None:
        self.redis.kill()


class TritonService(_PopenService):
    """tritonserver with its Python-backend stubs; a fresh `LocalTriton` (work dir) per start."""

    def __init__(self, make: Callable[[], LocalTriton], timeout_s: float, name: str = "triton") -> None:
        self._make, self.timeout_s, self.name = make, timeout_s, name
        self.triton: LocalTriton | None = None

    def _popen(self) -> subprocess.Popen | None:
        return self.triton.proc if self.triton is not None else None

    def start(self) -> None:
        self.triton = self._make()
        self.triton.start()
        self.triton.wait_ready(self.timeout_s)

    def stop(self) -> int | None:
        triton, self.triton = self.triton, None
        return triton.stop() if triton is not None else None

    def kill(self) -> None:
        """The whole process group (server and stubs), then the work dir and shared memory."""
        popen = self._popen()
        if _alive(popen):
            assert popen is not None
            os.killpg(popen.pid, signal.SIGKILL)
            popen.wait(10)
        if self.triton is not None:
            prefix = self.triton.shm_prefix
            self.stop()
            _remove_shm(prefix)


def _remove_shm(prefix: str) -> None:
    """Shared-memory regions a killed tritonserver left behind (its Python backend's)."""
    shm = Path("/dev/shm")
    if shm.is_dir():
        for path in shm.glob(prefix + "*"):
            path.unlink(missing_ok=True)
