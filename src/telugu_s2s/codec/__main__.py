"""`python -m telugu_s2s.codec`: run the codec gRPC service."""

from __future__ import annotations

import sys

from telugu_s2s.codec.config import Config
from telugu_s2s.codec.server import serve
from telugu_s2s.codec.weights import WeightsNotFoundError
from telugu_s2s.common import logs
from telugu_s2s.common.entry import run_service
from telugu_s2s.security import logctx


def _setup(cfg: Config) -> None:
    logs.setup("codec", cfg.log_level)
    logctx.install()


def main(argv: list[str] | None = None) -> int:
    return run_service("codec", Config.from_env, serve, _setup, argv, startup_errors=(WeightsNotFoundError,))


if __name__ == "__main__":
    sys.exit(main())
