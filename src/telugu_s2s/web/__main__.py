"""`python -m telugu_s2s.web`: the browser page and its WebSocket bridge to the gateway."""

from __future__ import annotations

import logging
import sys

from telugu_s2s.common import logs
from telugu_s2s.common.entry import run_service
from telugu_s2s.web.config import WebConfig
from telugu_s2s.web.server import serve


def _setup(cfg: WebConfig) -> None:
    logs.setup("web", cfg.log_level)
    logging.getLogger("websockets").setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    return run_service("web", WebConfig.from_env, serve, _setup, argv, startup_errors=(OSError,))


if __name__ == "__main__":
    sys.exit(main())
