"""Configuration of the context service: one frozen dataclass, built once at the entry point.

Every setting comes from a `TS2S_CONTEXT_*` environment variable and may be overridden by a
command-line flag of the same name (`--redis-url`, `--ttl-s`, ...). The Redis password is
never part of the URL or a flag: it comes from `TS2S_CONTEXT_REDIS_PASSWORD` or from the
file named by `TS2S_CONTEXT_REDIS_PASSWORD_FILE` (for Kubernetes secrets mounted as files).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from telugu_s2s.common import settings
from telugu_s2s.common.settings import SettingError, derived, setting
from telugu_s2s.security.tls import ServerTls

DEFAULT_PORT = 50053
DEFAULT_METRICS_PORT = 9103
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/0"
MEMORY_URL = "memory://"


PREFIX = "TS2S_CONTEXT_"
ConfigError = SettingError


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
    host: str = setting("0.0.0.0", help="gRPC listen address")
    port: int = setting(DEFAULT_PORT, help="gRPC port (0 picks a free one)")
    metrics_host: str = setting("0.0.0.0", help="metrics address")
    metrics_port: int = setting(DEFAULT_METRICS_PORT, help="Prometheus port, 0 = off")
    # redis://host:port/db, rediss://host:port/db (TLS), unix:///path.sock, or memory://.
    redis_url: str = setting(MEMORY_URL, help="redis://, rediss:// (TLS), unix:// or memory:// (single process only)")
    # Never a flag or part of the URL: TS2S_CONTEXT_REDIS_PASSWORD or _PASSWORD_FILE.
    redis_password: str | None = derived(repr=False)
    tls: TlsOptions = derived(TlsOptions())
    # TLS/mTLS of this service's own gRPC port (TS2S_CONTEXT_TLS_CERT_FILE/_KEY_FILE/_CLIENT_CA_FILE).
    server_tls: ServerTls = derived(ServerTls())
    # Prefix of every Redis key, so several deployments can share one Redis.
    key_prefix: str = setting("ts2s:ctx:", help="prefix of every Redis key")
    # Session time-to-live; refreshed by every call that touches the session.
    ttl_s: float = setting(86400.0, help="session time-to-live in seconds")
    # Turns remembered per session (older ones are trimmed on append).
    max_turns: int = setting(10, help="turns remembered per session")
    # Serialized size limits: one turn, and all remembered turns of one session.
    max_turn_bytes: int = setting(256 * 1024, help="largest serialized turn accepted")
    max_session_bytes: int = setting(2 * 1024 * 1024, help="largest total size of the remembered turns of one session")
    # Redis client: pool size, socket timeout, and how long a call waits for a free connection.
    redis_pool_size: int = setting(32, help="Redis connection pool size")
    redis_timeout_s: float = setting(2.0, help="Redis socket and pool wait timeout")
    # Background health probe period (PING), and how often it retries while Redis is down.
    health_interval_s: float = setting(2.0, help="period of the background Redis health probe")
    drain_grace_s: float = setting(5.0, help="time in-flight calls get on SIGTERM")
    log_level: str = setting("INFO", parse=str.upper, help="log level")
    log_format: str = setting("json", choices=("json", "text"), help="json or text")

    def __post_init__(self) -> None:
        self.validate()

    @property
    def is_memory(self) -> bool:
        return self.redis_url.startswith("memory:")

    @property
    def log_json(self) -> bool:
        return self.log_format == "json"

    @classmethod
    def from_env(cls, argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> Config:
        """Defaults < TS2S_CONTEXT_* environment variables < command-line flags; the password
        and the TLS files only from the environment."""
        env = os.environ if env is None else env
        tls = TlsOptions(
            ca_file=env.get("TS2S_CONTEXT_REDIS_TLS_CA_FILE") or None,
            cert_file=env.get("TS2S_CONTEXT_REDIS_TLS_CERT_FILE") or None,
            key_file=env.get("TS2S_CONTEXT_REDIS_TLS_KEY_FILE") or None,
            verify=env.get("TS2S_CONTEXT_REDIS_TLS_VERIFY", "required"),
            check_hostname=_bool(
                env.get("TS2S_CONTEXT_REDIS_TLS_CHECK_HOSTNAME", "1"), "TS2S_CONTEXT_REDIS_TLS_CHECK_HOSTNAME"
            ),
        )
        server_tls = ServerTls.from_env(PREFIX, env)  # a TlsConfigError is a SettingError
        return settings.load(
            cls,
            PREFIX,
            argv,
            env,
            prog="python -m telugu_s2s.context",
            description="Context service: session voice and last turns, stored in Redis.",
            extra={"redis_password": _read_password(env), "tls": tls, "server_tls": server_tls},
        )

    def to_env(self) -> dict[str, str]:
        """The TS2S_CONTEXT_* variables that make `from_env` build this config (not the
        password or TLS files, which a launcher passes as they are)."""
        return settings.to_env(self, PREFIX)

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


def _bool(value: str, name: str) -> bool:
    v = value.strip().lower()
    if v in ("1", "true", "yes", "on"):
        return True
    if v in ("0", "false", "no", "off", ""):
        return False
    raise ConfigError(f"{name} must be 1 or 0, got {value!r}")
