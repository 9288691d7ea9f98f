"""`python -m telugu_s2s.context [--flags]`: run the context service."""

from __future__ import annotations

import asyncio
import sys

from telugu_s2s.common import logs
from telugu_s2s.common.service import PortInUseError
from telugu_s2s.context.config import Config, ConfigError
from telugu_s2s.context.server import serve
from telugu_s2s.security import logctx


def main(argv: list[str] | None = None) -> int:
    try:
        cfg = Config.from_env(argv)
    except ConfigError as exc:
        print(f"context: configuration error: {exc}", file=sys.stderr)
        return 2
    logs.setup("context", cfg.log_level, cfg.log_json)
    logctx.install()
    try:
        asyncio.run(serve(cfg))
    except PortInUseError as exc:
        print(f"context: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
