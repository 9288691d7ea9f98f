"""Configuration of the context service: one frozen dataclass, built once at the entry point.

Every setting comes from a `TS2S_CONTEXT_*` environment variable and may be overridden by a
command-line flag of the same name (`--redis-url`, `--ttl-s`, ...). The Redis password is
never part of the URL or a flag: it comes from `TS2S_CONTEXT_REDIS_PASSWORD` or from the
file named by `TS2S_CONTEXT_REDIS_PASSWORD_FILE` (for Kubernetes secrets mounted as files).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from telugu_s2s.security.tls import ServerTls, TlsConfigError

DEFAULT_PORT = 50053
DEFAULT_METRICS_PORT = 9103
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
MEMORY_URL = "memory://"


class ConfigError(ValueError):
    """A setting is missing or malformed; the message names the variable to fix."""


@dataclass(frozen=True)
class TlsOptions:
    """TLS settings used with a `rediss://` URL."""

    ca_file: str | None = None
    cert_file: str | None = None
    key_file: str | None = None
    # "required" (verify the server certificate, the default), "optional" or "none".
    verify: str = "required"
    check_hostname: bool = True


@dataclass(frozen=True)
class Config:
    host: str = "0.0.0.0"
    port: int = DEFAULT_PORT
    metrics_host: str = "0.0.0.0"
    metrics_port: int = DEFAULT_METRICS_PORT
    # redis://host:port/db, rediss://host:port/db (TLS), unix:///path.sock, or memory://.
    redis_url: str = MEMORY_URL
    redis_password: str | None = field(default=None, repr=False)
    tls: TlsOptions = TlsOptions()
    # TLS/mTLS of this service's own gRPC port (TS2S_CONTEXT_TLS_CERT_FILE/_KEY_FILE/_CLIENT_CA_FILE).
    server_tls: ServerTls = ServerTls()
    # Prefix of every Redis key, so several deployments can share one Redis.
    key_prefix: str = "ts2s:ctx:"
    # Session time-to-live; refreshed by every call that touches the session.
    ttl_s: float = 86400.0
    # Turns remembered per session (older ones are trimmed on append).
    max_turns: int = 10
    # Serialized size limits: one turn, and all remembered turns of one session.
    max_turn_bytes: int = 256 * 1024
    max_session_bytes: int = 2 * 1024 * 1024
    # Redis client: pool size, socket timeout, and how long a call waits for a free connection.
    redis_pool_size: int = 32
    redis_timeout_s: float = 2.0
    # Background health probe period (PING), and how often it retries while Redis is down.
    health_interval_s: float = 2.0
    drain_grace_s: float = 5.0
    log_level: str = "INFO"
    log_json: bool = True

    @property
    def is_memory(self) -> bool:
        return self.redis_url.startswith("memory:")

    @classmethod
    def from_env(cls, argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> Config:
        env = os.environ if env is None else env
        p = argparse.ArgumentParser(
            prog="python -m telugu_s2s.context",
            description="Context service: session voice and last turns, stored in Redis.",
        )

        def opt(flag: str, var: str, default: object, help_: str) -> None:
            p.add_argument(flag, default=env.get(var, default), help=f"{help_} (env {var})")

        opt("--host", "TS2S_CONTEXT_HOST", cls.host, "gRPC listen address")
        opt("--port", "TS2S_CONTEXT_PORT", cls.port, "gRPC port (0 picks a free one)")
        opt("--metrics-host", "TS2S_CONTEXT_METRICS_HOST", cls.metrics_host, "metrics address")
        opt("--metrics-port", "TS2S_CONTEXT_METRICS_PORT", cls.metrics_port, "Prometheus port, 0 = off")
        opt(
            "--redis-url",
            "TS2S_CONTEXT_REDIS_URL",
            cls.redis_url,
            "redis://, rediss:// (TLS), unix:// or memory:// (single process only)",
        )
        opt("--key-prefix", "TS2S_CONTEXT_KEY_PREFIX", cls.key_prefix, "prefix of every Redis key")
        opt("--ttl-s", "TS2S_CONTEXT_TTL_S", cls.ttl_s, "session time-to-live in seconds")
        opt("--max-turns", "TS2S_CONTEXT_MAX_TURNS", cls.max_turns, "turns remembered per session")
        opt("--max-turn-bytes", "TS2S_CONTEXT_MAX_TURN_BYTES", cls.max_turn_bytes, "largest serialized turn accepted")
        opt(
            "--max-session-bytes",
            "TS2S_CONTEXT_MAX_SESSION_BYTES",
            cls.max_session_bytes,
            "largest total size of the remembered turns of one session",
        )
        opt("--redis-pool-size", "TS2S_CONTEXT_REDIS_POOL_SIZE", cls.redis_pool_size, "Redis connection pool size")
        opt(
            "--redis-timeout-s",
            "TS2S_CONTEXT_REDIS_TIMEOUT_S",
            cls.redis_timeout_s,
            "Redis socket and pool wait timeout",
        )
        opt(
            "--health-interval-s",
            "TS2S_CONTEXT_HEALTH_INTERVAL_S",
            cls.health_interval_s,
            "period of the background Redis health probe",
        )
        opt("--drain-grace-s", "TS2S_CONTEXT_DRAIN_GRACE_S", cls.drain_grace_s, "time in-flight calls get on SIGTERM")
        opt("--log-level", "TS2S_CONTEXT_LOG_LEVEL", cls.log_level, "log level")
        opt("--log-format", "TS2S_CONTEXT_LOG_FORMAT", "json", "json or text")
        a = p.parse_args(list(argv) if argv is not None else None)

        password = _read_password(env)
        tls = TlsOptions(
            ca_file=env.get("TS2S_CONTEXT_REDIS_TLS_CA_FILE") or None,
            cert_file=env.get("TS2S_CONTEXT_REDIS_TLS_CERT_FILE") or None,
            key_file=env.get("TS2S_CONTEXT_REDIS_TLS_KEY_FILE") or None,
            verify=env.get("TS2S_CONTEXT_REDIS_TLS_VERIFY", "required"),
            check_hostname=_bool(
                env.get("TS2S_CONTEXT_REDIS_TLS_CHECK_HOSTNAME", "1"), "TS2S_CONTEXT_REDIS_TLS_CHECK_HOSTNAME"
            ),
        )
        try:
            server_tls = ServerTls.from_env("TS2S_CONTEXT_", env)
        except TlsConfigError as exc:
            raise ConfigError(str(exc)) from exc
        if a.log_format not in ("json", "text"):
            raise ConfigError(f"TS2S_CONTEXT_LOG_FORMAT must be json or text, got {a.log_format!r}")
        cfg = cls(
            host=str(a.host),
            port=_int(a.port, "TS2S_CONTEXT_PORT"),
            metrics_host=str(a.metrics_host),
            metrics_port=_int(a.metrics_port, "TS2S_CONTEXT_METRICS_PORT"),
            redis_url=str(a.redis_url).strip(),
            redis_password=password,
            tls=tls,
            server_tls=server_tls,
            key_prefix=str(a.key_prefix),
            ttl_s=_float(a.ttl_s, "TS2S_CONTEXT_TTL_S"),
            max_turns=_int(a.max_turns, "TS2S_CONTEXT_MAX_TURNS"),
            max_turn_bytes=_int(a.max_turn_bytes, "TS2S_CONTEXT_MAX_TURN_BYTES"),
            max_session_bytes=_int(a.max_session_bytes, "TS2S_CONTEXT_MAX_SESSION_BYTES"),
            redis_pool_size=_int(a.redis_pool_size, "TS2S_CONTEXT_REDIS_POOL_SIZE"),
            redis_timeout_s=_float(a.redis_timeout_s, "TS2S_CONTEXT_REDIS_TIMEOUT_S"),
            health_interval_s=_float(a.health_interval_s, "TS2S_CONTEXT_HEALTH_INTERVAL_S"),
            drain_grace_s=_float(a.drain_grace_s, "TS2S_CONTEXT_DRAIN_GRACE_S"),
            log_level=str(a.log_level).upper(),
            log_json=a.log_format == "json",
        )
        cfg.validate()
        return cfg

    def validate(self) -> None:
        """Raise ConfigError naming the setting to fix."""
        if not 0 <= self.port <= 65535:
            raise ConfigError(f"TS2S_CONTEXT_PORT must be 0..65535, got {self.port}")
        if not 0 <= self.metrics_port <= 65535:
            raise ConfigError(f"TS2S_CONTEXT_METRICS_PORT must be 0..65535, got {self.metrics_port}")
        if self.ttl_s <= 0:
            raise ConfigError(f"TS2S_CONTEXT_TTL_S must be > 0 seconds, got {self.ttl_s}")
        if not 1 <= self.max_turns <= 1000:
            raise ConfigError(f"TS2S_CONTEXT_MAX_TURNS must be 1..1000, got {self.max_turns}")
        if self.max_turn_bytes < 1:
            raise ConfigError(f"TS2S_CONTEXT_MAX_TURN_BYTES must be > 0, got {self.max_turn_bytes}")
        if self.max_session_bytes < self.max_turn_bytes:
            raise ConfigError(
                "TS2S_CONTEXT_MAX_SESSION_BYTES must be >= TS2S_CONTEXT_MAX_TURN_BYTES "
                f"({self.max_session_bytes} < {self.max_turn_bytes})"
            )
        if self.redis_pool_size < 1:
            raise ConfigError(f"TS2S_CONTEXT_REDIS_POOL_SIZE must be >= 1, got {self.redis_pool_size}")
        if self.redis_timeout_s <= 0 or self.health_interval_s <= 0:
            raise ConfigError("TS2S_CONTEXT_REDIS_TIMEOUT_S and TS2S_CONTEXT_HEALTH_INTERVAL_S must be > 0")
        if self.tls.verify not in ("required", "optional", "none"):
            raise ConfigError(
                f"TS2S_CONTEXT_REDIS_TLS_VERIFY must be required, optional or none, got {self.tls.verify!r}"
            )
        if self.is_memory:
            if self.redis_url.rstrip("/") != "memory:":
                raise ConfigError(
                    f"TS2S_CONTEXT_REDIS_URL: the memory backend is just memory://, got {self.redis_url!r}"
                )
            return
        parts = urlsplit(self.redis_url)
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise ConfigError(
                "TS2S_CONTEXT_REDIS_URL must start with redis://, rediss:// (TLS), unix:// or be "
                f"memory://, got scheme {parts.scheme!r}"
            )
        if parts.password:
            raise ConfigError(
                "TS2S_CONTEXT_REDIS_URL must not carry a password; put it in "
                "TS2S_CONTEXT_REDIS_PASSWORD or in a file named by TS2S_CONTEXT_REDIS_PASSWORD_FILE"
            )
        if parts.scheme != "unix" and not parts.hostname:
            raise ConfigError(f"TS2S_CONTEXT_REDIS_URL has no host: {self.redis_url!r}")

    def redis_address(self) -> str:
        """host:port (or socket path) of the configured Redis, for messages. Never the password."""
        if self.is_memory:
            return "memory"
        parts = urlsplit(self.redis_url)
        if parts.scheme == "unix":
            return parts.path
        return f"{parts.hostname}:{parts.port or 6379}"


def _read_password(env: Mapping[str, str]) -> str | None:
    direct = env.get("TS2S_CONTEXT_REDIS_PASSWORD")
    path = env.get("TS2S_CONTEXT_REDIS_PASSWORD_FILE")
    if direct and path:
        raise ConfigError("set only one of TS2S_CONTEXT_REDIS_PASSWORD and TS2S_CONTEXT_REDIS_PASSWORD_FILE")
    if path:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"TS2S_CONTEXT_REDIS_PASSWORD_FILE: cannot read {path}: {exc.strerror or exc}") from exc
        # A trailing newline is an artefact of how the file was written, not part of the secret.
        password = text.rstrip("\r\n")
        if not password:
            raise ConfigError(f"TS2S_CONTEXT_REDIS_PASSWORD_FILE: {path} is empty")
        return password
    return direct or None


def _int(value: object, name: str) -> int:
    try:
        return int(str(value).strip())
    except ValueError:
        raise ConfigError(f"{name} must be an integer, got {value!r}") from None


def _float(value: object, name: str) -> float:
    try:
        return float(str(value).strip())
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {value!r}") from None


def _bool(value: str, name: str) -> bool:
    v = value.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{name} must be 1 or 0, got {value!r}")
