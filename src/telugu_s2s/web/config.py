"""Web bridge configuration, built once at the entry point (`common.settings`)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from telugu_s2s.common import settings
from telugu_s2s.common.settings import SettingError, setting

PREFIX = "TS2S_WEB_"


@dataclass(frozen=True)
class WebConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    gateway_target: str = setting("127.0.0.1:50051", flag="--gateway", help="gateway host:port")
    # Optional bearer key forwarded to a gateway that requires one: TS2S_WEB_GATEWAY_API_KEY, or
    # the file named by TS2S_WEB_GATEWAY_API_KEY_FILE. Never a flag.
    gateway_api_key: str = setting("", env_only=True)
    max_sessions: int = 32
    log_level: str = "INFO"

    @classmethod
    def from_env(cls, argv: Sequence[str] | None = None, env: Mapping[str, str] | None = None) -> WebConfig:
        env = os.environ if env is None else env
        cfg = settings.load(cls, PREFIX, argv, env, prog="python -m telugu_s2s.web", description=__doc__)
        key_file = env.get(f"{PREFIX}GATEWAY_API_KEY_FILE", "")
        if not key_file:
            return cfg
        try:
            with open(key_file) as f:
                return replace(cfg, gateway_api_key=f.read().strip())
        except OSError as exc:
            raise SettingError(f"{PREFIX}GATEWAY_API_KEY_FILE={key_file}: {exc.strerror}") from None

    def to_env(self) -> dict[str, str]:
        return settings.to_env(self, PREFIX)
