"""Start a local tritonserver on a model repository with the binary bundled in nvidia-pytriton.

The one place that knows how (tests, the local stack and the benchmark use it):
  * a backend directory ``<work>/backends/python/`` holding ``libtriton_python.so``,
    ``triton_python_backend_utils.py`` and the ``triton_python_backend_stub`` built for this
    interpreter's Python version (all three from the pytriton wheel);
  * ``LD_LIBRARY_PATH`` starting with this interpreter's ``sysconfig`` LIBDIR (otherwise the
    stub may pick up a different libpython3.x and fail to initialize the model), then the
    wheel's bundled libraries;
  * ``PATH`` starting with this interpreter's bin directory: the stub runs an *isolated* embedded
    Python (``PYTHONPATH`` is ignored) whose prefix comes from the first ``python3`` on PATH, so
    this puts the environment's site-packages (torch, numpy, and this package, installed there
    by ``make venv`` in editable mode) on its path. ``PYTHONPATH`` is still set (project ``src``
    + site-packages) for stubs that honour it. One environment serves one checkout: the model
    imports ``telugu_s2s`` from wherever that environment installed it;
  * a per-server shared-memory prefix, so several servers on one machine do not collide.

HTTP ``/infer`` refuses decoupled models: clients use gRPC streaming. HTTP is used here only
for the readiness probe.

    python -m telugu_s2s.s2s.triton_local --grpc-port 8001 --http-port 8003 --metrics-port 8002
"""

from __future__ import annotations

import argparse
import atexit
import logging
import os
import shutil
import signal
import site
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import BinaryIO

from telugu_s2s.common.children import die_with_parent

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[3]
SRC_DIR = REPO_ROOT / "src"
DEFAULT_MODEL_REPOSITORY = REPO_ROOT / "services" / "s2s" / "model_repository"


class TritonNotAvailable(RuntimeError):
    """nvidia-pytriton (the bundled tritonserver) is not installed or incomplete."""


class TritonStartError(RuntimeError):
    """tritonserver exited or did not become ready."""


def pytriton_dir() -> Path:
    try:
        import pytriton
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise TritonNotAvailable("nvidia-pytriton is not installed: pip install 'telugu-s2s[triton-local]'") from exc
    return Path(pytriton.__file__).resolve().parent / "tritonserver"


def _bundled_libs(root: Path) -> list[Path]:
    return [p for p in (root / "external_libs", root.parent.parent / "nvidia_pytriton.libs") if p.is_dir()]


def prepare_backend_dir(work_dir: Path) -> Path:
    """<work_dir>/backends/python/{libtriton_python.so, triton_python_backend_utils.py, stub}."""
    root = pytriton_dir()
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    sources = {
        "libtriton_python.so": root / "backends" / "python" / "libtriton_python.so",
        "triton_python_backend_utils.py": root / "backends" / "python" / "triton_python_backend_utils.py",
        "triton_python_backend_stub": root / "python_backend_stubs" / version / "triton_python_backend_stub",
    }
    missing = [str(p) for p in sources.values() if not p.is_file()]
    if missing:
        raise TritonNotAvailable(f"nvidia-pytriton is incomplete for Python {version}; missing: {missing}")
    backends = work_dir / "backends"
    target = backends / "python"
    target.mkdir(parents=True, exist_ok=True)
    for name, src in sources.items():
        dst = target / name
        if not dst.exists() or dst.stat().st_size != src.stat().st_size:
            shutil.copy2(src, dst)
    return backends


def server_env(base: Mapping[str, str] | None = None, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Environment for tritonserver and its Python-backend stubs."""
    env = dict(os.environ if base is None else base)
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    lib_paths = [libdir, *(str(p) for p in _bundled_libs(pytriton_dir()))]
    if env.get("LD_LIBRARY_PATH"):
        lib_paths.append(env["LD_LIBRARY_PATH"])
    env["LD_LIBRARY_PATH"] = ":".join(p for p in lib_paths if p)
    # The stub embeds the first `python3` on PATH and takes that environment's site-packages
    # (it runs isolated: PYTHONPATH is ignored by the stubs seen here, but set for others).
    env["PATH"] = ":".join(p for p in (str(Path(sys.executable).parent), env.get("PATH", "")) if p)
    py_paths = [str(SRC_DIR), *site.getsitepackages()]
    if env.get("PYTHONPATH"):
        py_paths.append(env["PYTHONPATH"])
    env["PYTHONPATH"] = ":".join(py_paths)
    env.update(extra or {})
    return env


class LocalTriton:
    """A tritonserver child process serving `model_repository` on the given ports."""

    def __init__(
        self,
        model_repository: str | Path = DEFAULT_MODEL_REPOSITORY,
        grpc_port: int = 8001,
        http_port: int = 8003,
        metrics_port: int = 8002,
        env: Mapping[str, str] | None = None,
        log_path: str | Path | None = None,
        work_dir: str | Path | None = None,
        extra_args: Sequence[str] = (),
        log_verbose: int = 0,
        exit_timeout_s: int = 10,
    ) -> None:
        self.model_repository = Path(model_repository).resolve()
        self.grpc_port, self.http_port, self.metrics_port = grpc_port, http_port, metrics_port
        self.extra_env = dict(env or {})
        self._tmp: tempfile.TemporaryDirectory | None = None
        if work_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="ts2s-triton-")
            work_dir = self._tmp.name
        self.work_dir = Path(work_dir)
        self.log_path = Path(log_path) if log_path else self.work_dir / "tritonserver.log"
        self.extra_args = list(extra_args)
        self.log_verbose = log_verbose
        self.exit_timeout_s = exit_timeout_s
        self.proc: subprocess.Popen | None = None
        self._log_file: BinaryIO | None = None

    @property
    def grpc_target(self) -> str:
        return f"localhost:{self.grpc_port}"

    @property
    def shm_prefix(self) -> str:
        """Name prefix of the Python backend's shared-memory regions (unique per server)."""
        return f"ts2s_{os.getpid()}_{self.grpc_port}_"

    def command(self) -> list[str]:
        binary = pytriton_dir() / "bin" / "tritonserver"
        backends = prepare_backend_dir(self.work_dir)
        return [
            str(binary),
            f"--model-repository={self.model_repository}",
            f"--backend-directory={backends}",
            f"--grpc-port={self.grpc_port}",
            f"--http-port={self.http_port}",
            f"--metrics-port={self.metrics_port}",
            "--allow-gpu-metrics=false",
            "--strict-readiness=true",
            "--exit-on-error=true",
            "--disable-auto-complete-config",
            f"--backend-config=python,shm-region-prefix-name={self.shm_prefix}",
            f"--exit-timeout-secs={self.exit_timeout_s}",
            f"--log-verbose={self.log_verbose}",
            *self.extra_args,
        ]

    def start(self) -> None:
        if self.proc is not None:
            raise RuntimeError("already started")
        if not self.model_repository.is_dir():
            raise TritonStartError(f"model repository {self.model_repository} does not exist")
        cmd = self.command()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = open(self.log_path, "ab")
        log.info("starting tritonserver", extra={"grpc_port": self.grpc_port, "log": str(self.log_path)})
        # The server must not outlive this process (a crashed or killed test run would leave
        # it holding ports and memory); atexit covers normal exits.
        self.proc = subprocess.Popen(
            cmd,
            env=server_env(extra=self.extra_env),
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=die_with_parent(),
        )
        atexit.register(self.stop)

    def log_tail(self, n_chars: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n_chars:]
        except OSError:
            return ""

    def is_ready(self) -> bool:
        url = f"http://127.0.0.1:{self.http_port}/v2/health/ready"
        try:
            with urllib.request.urlopen(url, timeout=1.0) as resp:
                return resp.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Block until the server reports ready; raise TritonStartError (with the log tail)."""
        if self.proc is None:
            raise RuntimeError("not started")
        stop = threading.Event()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise TritonStartError(f"tritonserver exited with {self.proc.returncode}:\n{self.log_tail()}")
            if self.is_ready():
                return
            stop.wait(0.25)  # the server has no readiness push; poll its health endpoint
        raise TritonStartError(f"tritonserver not ready after {timeout:.0f}s:\n{self.log_tail()}")

    def stop(self, grace_s: float = 15.0) -> int | None:
        """SIGTERM (Triton drains in-flight requests), then SIGKILL after grace_s."""
        proc, self.proc = self.proc, None
        rc = None
        if proc is not None:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(grace_s)
                except subprocess.TimeoutExpired:
                    log.warning("tritonserver did not stop in %.0fs; killing it", grace_s)
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(10)
            rc = proc.returncode
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None
        return rc

    def __enter__(self) -> LocalTriton:
        self.start()
        try:
            self.wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: Sequence[str] | None = None) -> int:
    from telugu_s2s.common import logs

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-repository", default=str(DEFAULT_MODEL_REPOSITORY))
    parser.add_argument("--grpc-port", type=int, default=8001)
    parser.add_argument("--http-port", type=int, default=8003)
    parser.add_argument("--metrics-port", type=int, default=8002)
    parser.add_argument("--log-path", default=None, help="tritonserver log file (default: a temp dir)")
    parser.add_argument("--checkpoint-dir", default=None, help="sets TS2S_S2S_CHECKPOINT_DIR for the model")
    parser.add_argument(
        "--allow-random-weights", action="store_true", help="sets TS2S_S2S_ALLOW_RANDOM_WEIGHTS=1 (untrained!)"
    )
    parser.add_argument("--ready-timeout", type=float, default=300.0)
    args = parser.parse_args(argv)
    logs.setup("triton-local", json_format=False)
    env = {}
    if args.checkpoint_dir:
        env["TS2S_S2S_CHECKPOINT_DIR"] = str(Path(args.checkpoint_dir).resolve())
    if args.allow_random_weights:
        env["TS2S_S2S_ALLOW_RANDOM_WEIGHTS"] = "1"
    server = LocalTriton(
        args.model_repository, args.grpc_port, args.http_port, args.metrics_port, env=env, log_path=args.log_path
    )
    stopping = threading.Event()

    def _on_signal(signum, frame):
        stopping.set()

    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    server.start()
    try:
        server.wait_ready(args.ready_timeout)
        log.info("tritonserver ready: gRPC %s, log %s", server.grpc_target, server.log_path)
        while not stopping.is_set() and server.proc is not None and server.proc.poll() is None:
            stopping.wait(0.5)
        if server.proc is not None and server.proc.poll() is not None:
            log.error("tritonserver exited with %s:\n%s", server.proc.returncode, server.log_tail())
            return 1
        return 0
    except TritonStartError as exc:
        log.error("%s", exc)
        return 1
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
