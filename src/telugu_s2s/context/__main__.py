"""`python -m telugu_s2s.context [--flags]`: run the context service."""

from __future__ import annotations

import sys

from telugu_s2s.common import logs
from telugu_s2s.common.entry import run_service
from telugu_s2s.context.config import Config
from telugu_s2s.context.server import serve
from telugu_s2s.security import logctx


def _setup(cfg: Config) -> None:
    logs.setup("context", cfg.log_level, cfg.log_json)
    logctx.install()


def main(argv: list[str] | None = None) -> int:
    return run_service("context", Config.from_env, serve, _setup, argv)


if __name__ == "__main__":
    sys.exit(main())
