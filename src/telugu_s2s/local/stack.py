"""`telugu-s2s up`: context (+ redis-server), codec, tritonserver and gateway as real processes."""

from __future__ import annotations

import logging
import shutil
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
        self._redis = None
        self._triton = None
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
            self.say("context: redis-server is not installed, using the in-process memory:// backend "
                     "(single process only; sessions are lost on restart)")
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
        cfg = self.cfg
        env = {
            "TS2S_GATEWAY_HOST": cfg.host,
            "TS2S_GATEWAY_PORT": str(cfg.gateway_port),
            "TS2S_GATEWAY_METRICS_PORT": str(cfg.gateway_metrics_port),
            "TS2S_GATEWAY_CODEC_TARGET": f"{cfg.host}:{cfg.codec_port}",
            "TS2S_GATEWAY_TRITON_TARGET": f"127.0.0.1:{cfg.triton_grpc_port}",
            "TS2S_GATEWAY_CONTEXT_TARGET": f"{cfg.host}:{cfg.context_port}",
            # Local development: no API keys, one tenant. Production requires keys (docs/security.md).
            "TS2S_GATEWAY_AUTH": "disabled",
            **dict(cfg.extra_gateway_env),
        }
        if env["TS2S_GATEWAY_AUTH"] == "disabled":
            self.say(f"gateway: API keys DISABLED (local dev mode, TS2S_GATEWAY_AUTH=disabled); "
                     f"gateway listens on {cfg.gateway_target}")
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
        return web + [
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

    def __enter__(self) -> "LocalStack":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def wait_forever(stack: LocalStack, poll_s: float = 1.0) -> str | None:
    """Block until a process dies (returns its name) or KeyboardInterrupt."""
    while True:
        dead = stack.check_alive()
        if dead:
            return dead
        time.sleep(poll_s)
