"""python -m telugu_s2s.gateway [--port N ...]  (see config.py for flags and TS2S_GATEWAY_* env vars)."""

from __future__ import annotations

import asyncio
import sys

from telugu_s2s.common import logs
from telugu_s2s.gateway.config import Config
from telugu_s2s.gateway.server import serve
from telugu_s2s.security import logctx


def main(argv: list[str] | None = None) -> None:
    cfg = Config.from_env(sys.argv[1:] if argv is None else argv)
    logs.setup("gateway", cfg.log_level)
    logctx.install()
    asyncio.run(serve(cfg))


if __name__ == "__main__":
    main()
