import asyncio
import logging
import sys

from telugu_s2s.common import logs
from telugu_s2s.web.config import WebConfig
from telugu_s2s.web.server import serve


def main(argv: list[str] | None = None) -> int:
    cfg = WebConfig.from_env(argv)
    logs.setup("web", cfg.log_level)
    logging.getLogger("websockets").setLevel(logging.WARNING)
    try:
        asyncio.run(serve(cfg))
    except OSError as exc:
        print(f"web: cannot listen on {cfg.host}:{cfg.port}: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
