"""python -m telugu_s2s.gateway [--port N ...]  (see config.py for flags and TS2S_GATEWAY_* env vars)."""

from __future__ import annotations

import sys

from telugu_s2s.common import logs
from telugu_s2s.common.entry import run_service
from telugu_s2s.gateway.auth import KeysFileError
from telugu_s2s.gateway.config import Config
from telugu_s2s.gateway.server import serve
from telugu_s2s.security import logctx
from telugu_s2s.security.tls import TlsConfigError
from telugu_s2s.turn.model import TurnModelError


def _setup(cfg: Config) -> None:
    logs.setup("gateway", cfg.log_level)
    logctx.install()


def main(argv: list[str] | None = None) -> int:
    return run_service(
        "gateway", Config.from_env, serve, _setup, argv, startup_errors=(KeysFileError, TlsConfigError, TurnModelError)
    )


if __name__ == "__main__":
    sys.exit(main())
