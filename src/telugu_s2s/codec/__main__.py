"""`python -m telugu_s2s.codec`: run the codec gRPC service."""

from __future__ import annotations

import asyncio
import sys

from telugu_s2s.codec.config import Config
from telugu_s2s.codec.server import serve
from telugu_s2s.codec.weights import WeightsNotFoundError
from telugu_s2s.common import logs
from telugu_s2s.common.service import PortInUseError
from telugu_s2s.security import logctx


def main(argv: list[str] | None = None) -> int:
    cfg = Config.from_env(argv)
    logs.setup("codec", cfg.log_level)
    logctx.install()
    try:
        asyncio.run(serve(cfg))
    except (WeightsNotFoundError, PortInUseError) as exc:
        import logging

        logging.getLogger("telugu_s2s.codec").error("codec cannot start: %s", exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
