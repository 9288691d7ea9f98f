"""`telugu-s2s up`: context (+ redis-server), codec, tritonserver and gateway as real processes."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from telugu_s2s.s2s.triton_local import LocalTriton

import functools
import ipaddress
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from telugu_s2s.codec.config import Config as CodecConfig
from telugu_s2s.common.settings import derived, setting
from telugu_s2s.context.config import Config as ContextConfig
from telugu_s2s.gateway.config import Config as GatewayConfig
from telugu_s2s.local.procs import StackError, check_ports_free, wait_grpc_serving, wait_http_ok
from telugu_s2s.local.services import PythonService, RedisService, Service, TritonService
from telugu_s2s.web.config import WebConfig

log = logging.getLogger(__name__)

REPO_ROOT = Path(__file__).resolve().parents[3]


@dataclass(frozen=True)
class StackConfig:
    """What `telugu-s2s up` starts and where (its flags come from these fields: common.settings)."""

    run_dir: Path = setting(REPO_ROOT / ".run", help="logs and redis data")
    host: str = setting("127.0.0.1", help="address every service binds")
    gateway_port: int = 50051
    gateway_metrics_port: int = 9101
    codec_port: int = 50052
    codec_metrics_port: int = 9102
    # Codec processes; replica i listens on codec_port + 100 i (metrics likewise) and the
    # gateway spreads its streams over them (round_robin, gateway/channels.py).
    codec_replicas: int = setting(1, help="codec processes behind the gateway")
    context_port: int = 50053
    context_metrics_port: int = 9103
    triton_grpc_port: int = 8001
    triton_http_port: int = 8003
    triton_metrics_port: int = 8002
    # tritonserver processes; replica i listens on each triton port + 100 i, and the gateway
    # spreads its generation calls over them (round_robin, s2s/client.py).
    triton_replicas: int = setting(1, help="tritonserver processes behind the gateway")
    redis_port: int = 6390
    web_port: int = setting(8000, help="browser demo page (0 disables)")
    context_backend: str = setting(
        "auto", choices=("auto", "redis", "memory"), help="auto: redis-server when installed, else memory://"
    )
    allow_random_weights: bool = setting(
        False, help="run on UNTRAINED weights when no checkpoint exists (replies are noise)"
    )
    codec_weights: str = setting("", help="official encodec_24khz .th file or a codec checkpoint dir")
    codec_checkpoint_dir: Path = setting(REPO_ROOT / "models" / "codec", flag="--codec-checkpoint")
    s2s_checkpoint_dir: Path = setting(REPO_ROOT / "models" / "s2s", flag="--s2s-checkpoint")
    model_repository: Path = setting(
        REPO_ROOT / "services" / "s2s" / "model_repository", help="Triton model repository"
    )
    start_timeout_s: float = setting(180.0, help="how long a service may take to become ready")
    # Tests: more gateway settings (TS2S_GATEWAY_* pairs) on top of the stack's own.
    extra_gateway_env: tuple[tuple[str, str], ...] = derived(())

    def __post_init__(self) -> None:
        if self.codec_replicas < 1:
            raise StackError(f"--codec-replicas must be >= 1, got {self.codec_replicas}")
        if self.triton_replicas < 1:
            raise StackError(f"--triton-replicas must be >= 1, got {self.triton_replicas}")
        if self.codec_replicas > 1 and not _is_ipv4(self.host):
            raise StackError(
                f"--codec-replicas needs an IPv4 --host (the gateway lists them by address), got {self.host}"
            )

    @property
    def gateway_target(self) -> str:
        return f"{self.host}:{self.gateway_port}"

    def codec_ports(self) -> list[tuple[str, int, int]]:
        """(service name, gRPC port, metrics port) of each codec replica."""
        return [
            ("codec" if i == 0 else f"codec-{i + 1}", self.codec_port + 100 * i, self.codec_metrics_port + 100 * i)
            for i in range(self.codec_replicas)
        ]

    @property
    def codec_target(self) -> str:
        """The gateway's codec target: one address, or all replicas as an ipv4: list."""
        return _target([f"{self.host}:{port}" for _, port, _ in self.codec_ports()])

    def triton_ports(self) -> list[tuple[str, int, int, int]]:
        """(service name, gRPC port, HTTP port, metrics port) of each tritonserver replica."""
        return [
            (
                "triton" if i == 0 else f"triton-{i + 1}",
                self.triton_grpc_port + 100 * i,
                self.triton_http_port + 100 * i,
                self.triton_metrics_port + 100 * i,
            )
            for i in range(self.triton_replicas)
        ]

    @property
    def triton_target(self) -> str:
        """The gateway's Triton target: one address, or all replicas as an ipv4: list
        (tritonserver listens on every interface; the gateway reaches it on loopback)."""
        return _target([f"127.0.0.1:{port}" for _, port, _, _ in self.triton_ports()])

    def ports(self) -> dict[str, int]:
        ports = {
            "gateway": self.gateway_port,
            "gateway metrics": self.gateway_metrics_port,
            **{name: port for name, port, _ in self.codec_ports()},
            **{f"{name} metrics": port for name, _, port in self.codec_ports()},
            "context": self.context_port,
            "context metrics": self.context_metrics_port,
            **{
                f"{name} {kind}": port
                for name, grpc_port, http_port, metrics_port in self.triton_ports()
                for kind, port in (("grpc", grpc_port), ("http", http_port), ("metrics", metrics_port))
            },
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
    """Starts the services in dependency order, waits for each health check, stops in reverse.

    Every process is a `Service` (local/services.py); `services` holds them in start order."""

    def __init__(self, cfg: StackConfig, say=print) -> None:
        self.cfg = cfg
        self.say = say
        self.backend = cfg.resolved_backend()
        self.services: dict[str, Service] = {}
        self._context_url = "memory://"

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
        try:
            for service in self._plan():
                self.services[service.name] = service
                service.start()
        except BaseException:
            self.stop()
            raise

    def _plan(self) -> list[Service]:
        """The services in start order, each with the environment its config object gives."""
        cfg = self.cfg
        logs = cfg.run_dir / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        plan: list[Service] = []
        if self.backend == "redis":
            redis = RedisService(cfg.run_dir / "redis", cfg.redis_port)
            self._context_url = redis.url
            self.say(f"context: redis-server on 127.0.0.1:{cfg.redis_port} (AOF on, data in {cfg.run_dir / 'redis'})")
            plan.append(redis)
        else:
            self.say(
                "context: redis-server is not installed, using the in-process memory:// backend "
                "(single process only; sessions are lost on restart)"
            )
        context = ContextConfig(
            host=cfg.host, port=cfg.context_port, metrics_port=cfg.context_metrics_port, redis_url=self._context_url
        )
        plan.append(
            PythonService(
                "context", "telugu_s2s.context", context.to_env, _grpc_ready(cfg.host, cfg.context_port, 30), logs
            )
        )
        for name, port, metrics_port in cfg.codec_ports():
            codec = CodecConfig(
                host=cfg.host,
                port=port,
                metrics_port=metrics_port,
                weights=cfg.codec_weights or None,
                checkpoint_dir=cfg.codec_checkpoint_dir,
                allow_random_weights=cfg.allow_random_weights,
            )
            ready = _grpc_ready(cfg.host, port, cfg.start_timeout_s)
            plan.append(PythonService(name, "telugu_s2s.codec", codec.to_env, ready, logs))
        for name, *ports in cfg.triton_ports():
            make = functools.partial(self._triton, logs, name, *ports)
            plan.append(TritonService(make, cfg.start_timeout_s, name=name))
        plan += [
            PythonService(
                "gateway", "telugu_s2s.gateway", self._gateway_env, _grpc_ready(cfg.host, cfg.gateway_port, 60), logs
            ),
        ]
        if cfg.web_port:
            web = WebConfig(host=cfg.host, port=cfg.web_port, gateway_target=cfg.gateway_target)
            ready = lambda proc: wait_http_ok(proc, f"http://{cfg.host}:{cfg.web_port}/", 30)  # noqa: E731
            plan.append(PythonService("web", "telugu_s2s.web", web.to_env, ready, logs))
        return plan

    def _triton(self, logs: Path, name: str, grpc_port: int, http_port: int, metrics_port: int) -> LocalTriton:
        from telugu_s2s.s2s.triton_local import LocalTriton

        cfg = self.cfg
        env = {"TS2S_S2S_CHECKPOINT_DIR": str(cfg.s2s_checkpoint_dir)}
        if cfg.allow_random_weights:
            env["TS2S_S2S_ALLOW_RANDOM_WEIGHTS"] = "1"
        return LocalTriton(
            cfg.model_repository,
            grpc_port=grpc_port,
            http_port=http_port,
            metrics_port=metrics_port,
            env=env,
            log_path=logs / f"{name}.log",
        )

    def _gateway_env(self) -> dict[str, str]:
        cfg = self.cfg
        gateway = GatewayConfig(
            host=cfg.host,
            port=cfg.gateway_port,
            metrics_port=cfg.gateway_metrics_port,
            codec_target=cfg.codec_target,
            triton_target=cfg.triton_target,
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
        return env

    # ------------------------------------------------------------------ processes
    def service(self, name: str) -> Service:
        """One of this stack's services by name (redis, context, codec, triton, gateway, web)."""
        try:
            return self.services[name]
        except KeyError:
            raise StackError(f"this stack has no {name!r}; it has {', '.join(self.services)}") from None

    def pid(self, name: str) -> int | None:
        """Process id of a service; None if it is not running."""
        return self.service(name).pid()

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
        for name, service in self.services.items():
            pid = service.pid()
            if pid is None:
                continue
            tree, todo = [], [pid]
            while todo:
                p = todo.pop()
                tree.append(p)
                todo.extend(children.get(p, []))
            out[name] = tree
        return out

    # ------------------------------------------------------------------ info
    def endpoints(self) -> list[tuple[str, str]]:
        cfg = self.cfg
        web = [("web page (talk in a browser)", f"http://{cfg.host}:{cfg.web_port}/")] if cfg.web_port else []
        return [
            *web,
            ("gateway (gRPC, public API)", cfg.gateway_target),
            ("gateway metrics", f"http://{cfg.host}:{cfg.gateway_metrics_port}/metrics"),
            *(
                entry
                for name, port, metrics_port in cfg.codec_ports()
                for entry in (
                    (f"{name} (gRPC)", f"{cfg.host}:{port}"),
                    (f"{name} metrics", f"http://{cfg.host}:{metrics_port}/metrics"),
                )
            ),
            ("context (gRPC)", f"{cfg.host}:{cfg.context_port}"),
            ("context metrics", f"http://{cfg.host}:{cfg.context_metrics_port}/metrics"),
            *(
                entry
                for name, grpc_port, _, metrics_port in cfg.triton_ports()
                for entry in (
                    (f"{name} (gRPC)", f"127.0.0.1:{grpc_port}"),
                    (f"{name} metrics", f"http://127.0.0.1:{metrics_port}/metrics"),
                )
            ),
            ("logs", str(cfg.run_dir / "logs")),
        ]

    def check_alive(self) -> str | None:
        """The name of a service that died, if any."""
        return next((name for name, service in self.services.items() if not service.alive()), None)

    # ------------------------------------------------------------------ stop
    def stop(self) -> None:
        """Reverse order: the web page, then the gateway drains, then its downstreams."""
        for service in reversed(list(self.services.values())):
            service.stop()
        self.services.clear()

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _target(addresses: list[str]) -> str:
    """One address as is; several as one `ipv4:` list, which round_robin spreads calls over."""
    return addresses[0] if len(addresses) == 1 else "ipv4:" + ",".join(addresses)


def _is_ipv4(host: str) -> bool:
    try:
        ipaddress.IPv4Address(host)
    except ValueError:
        return False
    return True


def _grpc_ready(host: str, port: int, timeout: float):
    return lambda proc: wait_grpc_serving(proc, f"{host}:{port}", timeout)


def wait_forever(stack: LocalStack, poll_s: float = 1.0) -> str | None:
    """Block until a process dies (returns its name) or KeyboardInterrupt."""
    while True:
        dead = stack.check_alive()
        if dead:
            return dead
        time.sleep(poll_s)
