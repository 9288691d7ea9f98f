"""`telugu-s2s up`: context (+ redis-server), codec, tritonserver and gateway as real processes."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from telugu_s2s.context.redis_local import LocalRedis
    from telugu_s2s.s2s.triton_local import LocalTriton

import logging
import os
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from telugu_s2s.local.procs import (
    Proc,
    StackError,
    check_ports_free,
    python_module,
    spawn,
    wait_grpc_serving,
    wait_http_ok,
)

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class StackConfig:
    run_dir: Path = REPO_ROOT / ".run"
    host: str = "127.0.0.1"
    gateway_port: int = 50051
    gateway_metrics_port: int = 9101
    codec_port: int = 50052
    codec_metrics_port: int = 9102
    context_port: int = 50053
    context_metrics_port: int = 9103
    triton_grpc_port: int = 8001
    triton_http_port: int = 8003
    triton_metrics_port: int = 8002
    redis_port: int = 6390
    web_port: int = 8000  # 0: no web page
    context_backend: str = "auto"  # auto | redis | memory
    allow_random_weights: bool = False
    codec_weights: str = ""
    codec_checkpoint_dir: Path = REPO_ROOT / "models" / "codec"
    s2s_checkpoint_dir: Path = REPO_ROOT / "models" / "s2s"
    model_repository: Path = REPO_ROOT / "services" / "s2s" / "model_repository"
    start_timeout_s: float = 180.0
    extra_gateway_env: tuple[tuple[str, str], ...] = field(default=())

    @property
    def gateway_target(self) -> str:
        return f"{self.host}:{self.gateway_port}"

    def ports(self) -> dict[str, int]:
        ports = {
            "gateway": self.gateway_port,
            "gateway metrics": self.gateway_metrics_port,
            "codec": self.codec_port,
            "codec metrics": self.codec_metrics_port,
            "context": self.context_port,
            "context metrics": self.context_metrics_port,
            "triton grpc": self.triton_grpc_port,
            "triton http": self.triton_http_port,
            "triton metrics": self.triton_metrics_port,
        }
        if self.resolved_backend() == "redis":
            ports["redis"] = self.redis_port
        if self.web_port:
            ports["web page"] = self.web_port
        return ports

    def resolved_backend(self) -> str:
        if self.context_backend == "auto":
            return "redis" if shutil.which("redis-server") else "memory"
        return self.context_backend

    def weights_missing(self) -> list[str]:
        missing = []
        if not self.codec_weights and not (self.codec_checkpoint_dir / "config.json").exists():
            missing.append(f"codec checkpoint ({self.codec_checkpoint_dir})")
        if not (self.s2s_checkpoint_dir / "config.json").exists():
            missing.append(f"S2S checkpoint ({self.s2s_checkpoint_dir})")
        return missing


class LocalStack:
    """Starts the services in dependency order, waits for each health check, stops in reverse."""

    def __init__(self, cfg: StackConfig, say=print) -> None:
        self.cfg = cfg
        self.say = say
        self.procs: list[Proc] = []
        self._redis: LocalRedis | None = None
        self._triton: LocalTriton | None = None
        self._context_url = "memory://"
        self.backend = cfg.resolved_backend()

    # ------------------------------------------------------------------ start
    def start(self) -> None:
        cfg = self.cfg
        if cfg.context_backend == "redis" and not shutil.which("redis-server"):
            raise StackError("--context-backend redis needs redis-server: apt-get install -y redis-server")
        missing = cfg.weights_missing()
        if missing and not cfg.allow_random_weights:
            raise StackError(
                "no trained weights found: "
                + ", ".join(missing)
                + ". Train them with `telugu-s2s train all` (see docs/training.md), point "
                "--codec-weights / --s2s-checkpoint at existing ones, or pass "
                "--allow-random-weights to run on UNTRAINED weights (the replies are noise)."
            )
        check_ports_free(cfg.host, cfg.ports())
        logs = cfg.run_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        try:
            self._start_context(logs)
            self._start_codec(logs)
            self._start_triton(logs)
            self._start_gateway(logs)
            self._start_web(logs)
        except BaseException:
            self.stop()
            raise

    def _random_env(self, name: str) -> dict[str, str]:
        return {name: "1"} if self.cfg.allow_random_weights else {}

    def _start_context(self, logs: Path) -> None:
        cfg = self.cfg
        if self.backend == "redis":
            from telugu_s2s.context.redis_local import LocalRedis

            self._redis = LocalRedis(cfg.run_dir / "redis", port=cfg.redis_port, appendonly=True)
            self._redis.start()
            self._redis.wait_ready(20)
            url = self._redis.url
            self.say(f"context: redis-server on 127.0.0.1:{cfg.redis_port} (AOF on, data in {cfg.run_dir / 'redis'})")
        else:
            url = "memory://"
            self.say(
                "context: redis-server is not installed, using the in-process memory:// backend "
                "(single process only; sessions are lost on restart)"
            )
        self._context_url = url
        self._start_context_service(logs)

    def _start_context_service(self, logs: Path) -> None:
        cfg = self.cfg
        url = self._context_url
        env = {
            "TS2S_CONTEXT_HOST": cfg.host,
            "TS2S_CONTEXT_PORT": str(cfg.context_port),
            "TS2S_CONTEXT_METRICS_PORT": str(cfg.context_metrics_port),
            "TS2S_CONTEXT_REDIS_URL": url,
        }
        proc = spawn("context", python_module("telugu_s2s.context"), env, logs)
        self.procs.append(proc)
        wait_grpc_serving(proc, f"{cfg.host}:{cfg.context_port}", 30)

    def _start_codec(self, logs: Path) -> None:
        cfg = self.cfg
        env = {
            "TS2S_CODEC_HOST": cfg.host,
            "TS2S_CODEC_PORT": str(cfg.codec_port),
            "TS2S_CODEC_METRICS_PORT": str(cfg.codec_metrics_port),
            "TS2S_CODEC_CHECKPOINT_DIR": str(cfg.codec_checkpoint_dir),
            **self._random_env("TS2S_CODEC_ALLOW_RANDOM_WEIGHTS"),
        }
        if cfg.codec_weights:
            env["TS2S_CODEC_WEIGHTS"] = cfg.codec_weights
        proc = spawn("codec", python_module("telugu_s2s.codec"), env, logs)
        self.procs.append(proc)
        wait_grpc_serving(proc, f"{cfg.host}:{cfg.codec_port}", cfg.start_timeout_s)

    def _start_triton(self, logs: Path) -> None:
        from telugu_s2s.s2s.triton_local import LocalTriton

        cfg = self.cfg
        env = {
            "TS2S_S2S_CHECKPOINT_DIR": str(cfg.s2s_checkpoint_dir),
            **self._random_env("TS2S_S2S_ALLOW_RANDOM_WEIGHTS"),
        }
        self._triton = LocalTriton(
            cfg.model_repository,
            grpc_port=cfg.triton_grpc_port,
            http_port=cfg.triton_http_port,
            metrics_port=cfg.triton_metrics_port,
            env=env,
            log_path=logs / "triton.log",
        )
        self._triton.start()
        self._triton.wait_ready(cfg.start_timeout_s)

    def _start_gateway(self, logs: Path) -> None:
        from telugu_s2s.gateway.config import Config as GatewayConfig

        cfg = self.cfg
        gateway = GatewayConfig(
            host=cfg.host,
            port=cfg.gateway_port,
            metrics_port=cfg.gateway_metrics_port,
            codec_target=f"{cfg.host}:{cfg.codec_port}",
            triton_target=f"127.0.0.1:{cfg.triton_grpc_port}",
            context_target=f"{cfg.host}:{cfg.context_port}",
            # Local development: no API keys, one tenant. Production requires keys (docs/security.md).
            auth="disabled",
        )
        env = {**gateway.to_env(), **dict(cfg.extra_gateway_env)}
        if env.get("TS2S_GATEWAY_AUTH", "required") == "disabled":
            self.say(
                f"gateway: API keys DISABLED (local dev mode, TS2S_GATEWAY_AUTH=disabled); "
                f"gateway listens on {cfg.gateway_target}"
            )
        proc = spawn("gateway", python_module("telugu_s2s.gateway"), env, logs)
        self.procs.append(proc)
        wait_grpc_serving(proc, cfg.gateway_target, 60)

    def restart_gateway(self) -> int | None:
        """Stop the gateway (SIGTERM, drain) and start a fresh one; returns the old exit code."""
        old = next(p for p in self.procs if p.name == "gateway")
        code = old.stop()
        self.procs.remove(old)
        self._start_gateway(self.cfg.run_dir / "logs")
        return code

    # ------------------------------------------------------------------ fault control
    # Used by the fault tests: kill, signal and start single services of a running stack.
    SERVICES = ("redis", "context", "codec", "triton", "gateway", "web")

    def _proc(self, name: str) -> Proc | None:
        return next((p for p in self.procs if p.name == name), None)

    def _popen(self, name: str) -> subprocess.Popen | None:
        if name == "triton":
            return self._triton.proc if self._triton is not None else None
        if name == "redis":
            return self._redis.proc if self._redis is not None else None
        proc = self._proc(name)
        return proc.popen if proc is not None else None

    def pid(self, name: str) -> int | None:
        """Process id of a service (redis, context, codec, triton, gateway, web); None if not running."""
        if name not in self.SERVICES:
            raise ValueError(f"unknown service {name!r}; one of {', '.join(self.SERVICES)}")
        popen = self._popen(name)
        return popen.pid if popen is not None and popen.poll() is None else None

    def pids(self) -> dict[str, list[int]]:
        """Every running service's process ids, children included (Triton's Python-backend stubs)."""
        children: dict[int, list[int]] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    stat = Path(f"/proc/{entry}/stat").read_text()
                except OSError:
                    continue
                ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
                children.setdefault(ppid, []).append(int(entry))
        out: dict[str, list[int]] = {}
        for name in self.SERVICES:
            pid = self.pid(name)
            if pid is None:
                continue
            tree, todo = [], [pid]
            while todo:
                p = todo.pop()
                tree.append(p)
                todo.extend(children.get(p, []))
            out[name] = tree
        return out

    def send_signal(self, name: str, sig: int = signal.SIGTERM) -> None:
        """Send a signal to a service's main process without waiting (e.g. SIGTERM to drain)."""
        pid = self.pid(name)
        if pid is None:
            raise StackError(f"{name} is not running")
        os.kill(pid, sig)

    def wait_exit(self, name: str, timeout: float = 30.0) -> int:
        """Wait for a service's process to exit; returns its exit code."""
        popen = self._popen(name)
        if popen is None:
            raise StackError(f"{name} was never started")
        return popen.wait(timeout)

    def kill(self, name: str) -> None:
        """SIGKILL a service (a crash: no drain, no cleanup) and wait until it is gone."""
        if name == "redis":
            if self._redis is not None:
                self._redis.kill()
            return
        popen = self._popen(name)
        if popen is None or popen.poll() is not None:
            return
        if name == "triton":
            # The whole process group: tritonserver and its Python-backend stubs.
            os.killpg(popen.pid, signal.SIGKILL)
        else:
            popen.kill()
        popen.wait(10)
        if name == "triton" and self._triton is not None:
            self._triton.stop()  # closes the log, removes the work dir
            self._triton = None
            _remove_shm(f"ts2s_{os.getpid()}_{self.cfg.triton_grpc_port}_")

    def start_service(self, name: str) -> None:
        """Start one service again (after kill() or a crash) with the stack's configuration."""
        if self.pid(name) is not None:
            raise StackError(f"{name} is already running")
        logs = self.cfg.run_dir / "logs"
        if name == "redis":
            if self._redis is None:
                raise StackError("this stack has no redis-server (memory:// backend)")
            self._redis.start()
            self._redis.wait_ready(20)
            return
        old = self._proc(name)
        if old is not None:
            self.procs.remove(old)
        starters = {
            "context": self._start_context_service,
            "codec": self._start_codec,
            "triton": self._start_triton,
            "gateway": self._start_gateway,
            "web": self._start_web,
        }
        starters[name](logs)

    def restart(self, name: str, *, hard: bool = False) -> int | None:
        """Stop a service (SIGTERM and wait, or SIGKILL with hard=True) and start it again.
        Returns the old process's exit code."""
        code: int | None = None
        if name == "redis":
            if self._redis is None:
                raise StackError("this stack has no redis-server (memory:// backend)")
            self._redis.restart(20, hard=hard)
            return self._redis.proc.returncode if self._redis.proc else None
        if hard:
            popen = self._popen(name)
            self.kill(name)
            code = popen.returncode if popen is not None else None
        elif name == "triton":
            if self._triton is not None:
                code = self._triton.stop()
                self._triton = None
        else:
            proc = self._proc(name)
            if proc is not None:
                code = proc.stop()
        self.start_service(name)
        return code

    def _start_web(self, logs: Path) -> None:
        cfg = self.cfg
        if not cfg.web_port:
            return
        env = {
            "TS2S_WEB_HOST": cfg.host,
            "TS2S_WEB_PORT": str(cfg.web_port),
            "TS2S_WEB_GATEWAY_TARGET": cfg.gateway_target,
        }
        proc = spawn("web", python_module("telugu_s2s.web"), env, logs)
        self.procs.append(proc)
        wait_http_ok(proc, f"http://{cfg.host}:{cfg.web_port}/", 30)

    # ------------------------------------------------------------------ info
    def endpoints(self) -> list[tuple[str, str]]:
        cfg = self.cfg
        web = [("web page (talk in a browser)", f"http://{cfg.host}:{cfg.web_port}/")] if cfg.web_port else []
        return [
            *web,
            ("gateway (gRPC, public API)", cfg.gateway_target),
            ("gateway metrics", f"http://{cfg.host}:{cfg.gateway_metrics_port}/metrics"),
            ("codec (gRPC)", f"{cfg.host}:{cfg.codec_port}"),
            ("codec metrics", f"http://{cfg.host}:{cfg.codec_metrics_port}/metrics"),
            ("context (gRPC)", f"{cfg.host}:{cfg.context_port}"),
            ("context metrics", f"http://{cfg.host}:{cfg.context_metrics_port}/metrics"),
            ("triton (gRPC)", f"127.0.0.1:{cfg.triton_grpc_port}"),
            ("triton metrics", f"http://127.0.0.1:{cfg.triton_metrics_port}/metrics"),
            ("logs", str(cfg.run_dir / "logs")),
        ]

    def check_alive(self) -> str | None:
        """The name of a process that died, if any."""
        for proc in self.procs:
            if not proc.alive():
                return proc.name
        if self._triton is not None and self._triton.proc is not None and self._triton.proc.poll() is not None:
            return "triton"
        return None

    # ------------------------------------------------------------------ stop
    def stop(self) -> None:
        """Reverse order: the gateway drains first, then its downstreams."""
        for proc in reversed(self.procs):
            if proc.name == "gateway":
                proc.stop()
        if self._triton is not None:
            self._triton.stop()
            self._triton = None
        for proc in reversed(self.procs):
            if proc.name != "gateway":
                proc.stop()
        self.procs.clear()
        if self._redis is not None:
            self._redis.stop()
            self._redis = None

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _remove_shm(prefix: str) -> None:
    """Shared-memory regions a killed tritonserver left behind (its Python backend's)."""
    shm = Path("/dev/shm")
    if shm.is_dir():
        for path in shm.glob(prefix + "*"):
            path.unlink(missing_ok=True)


def wait_forever(stack: LocalStack, poll_s: float = 1.0) -> str | None:
    """Block until a process dies (returns its name) or KeyboardInterrupt."""
    while True:
        dead = stack.check_alive()
        if dead:
            return dead
        time.sleep(poll_s)
