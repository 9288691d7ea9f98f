"""Web bridge configuration, built once at the entry point."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

from telugu_s2s.common.settings import SettingError, env_number


@dataclass(frozen=True)
class WebConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    gateway_target: str = "127.0.0.1:50051"
    # Optional bearer key forwarded to a gateway that requires one.
    gateway_api_key: str = ""
    max_sessions: int = 32
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, argv: list[str] | None = None, env: dict[str, str] | None = None) -> WebConfig:
        env = dict(os.environ if env is None else env)
        d = cls()
        p = argparse.ArgumentParser(prog="python -m telugu_s2s.web")
        p.add_argument("--host", default=env.get("TS2S_WEB_HOST", d.host))
        p.add_argument("--port", type=int, default=env_number(env, "TS2S_WEB_PORT", int, d.port))
        p.add_argument("--gateway", default=env.get("TS2S_WEB_GATEWAY_TARGET", d.gateway_target))
        p.add_argument(
            "--max-sessions", type=int, default=env_number(env, "TS2S_WEB_MAX_SESSIONS", int, d.max_sessions)
        )
        p.add_argument("--log-level", default=env.get("TS2S_WEB_LOG_LEVEL", d.log_level))
        a = p.parse_args(argv)
        key = env.get("TS2S_WEB_GATEWAY_API_KEY", "")
        key_file = env.get("TS2S_WEB_GATEWAY_API_KEY_FILE", "")
        if key_file:
            try:
                with open(key_file) as f:
                    key = f.read().strip()
            except OSError as exc:
                raise SettingError(f"TS2S_WEB_GATEWAY_API_KEY_FILE={key_file}: {exc.strerror}") from None
        return cls(
            host=a.host,
            port=a.port,
            gateway_target=a.gateway,
            gateway_api_key=key,
            max_sessions=a.max_sessions,
            log_level=a.log_level,
        )
