"""python -m telugu_s2s.gateway [--port N ...]  (see config.py for flags and TS2S_GATEWAY_* env vars)."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from telugu_s2s.gateway.config import Config

# The end-of-turn model runs small numpy products on the event loop, 50 times a second per
# caller in a pause. numpy's multi-threaded BLAS wakes its worker threads for each one, and
# they spin: in a one-caller benchmark that tripled the gateway's CPU (7 % -> 19 % of a core)
# and slowed the codec's first decode (p95 15 -> 89 ms) on 2 cores. One thread, set before
# numpy is first imported (which is why the imports below live inside the functions).
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")


def _setup(cfg: Config) -> None:
    from telugu_s2s.common import logs
    from telugu_s2s.security import logctx

    logs.setup("gateway", cfg.log_level)
    logctx.install()


def main(argv: list[str] | None = None) -> int:
    from telugu_s2s.common.entry import run_service
    from telugu_s2s.gateway.auth import KeysFileError
    from telugu_s2s.gateway.config import Config
    from telugu_s2s.gateway.server import serve
    from telugu_s2s.security.tls import TlsConfigError
    from telugu_s2s.turn.model import TurnModelError

    return run_service(
        "gateway", Config.from_env, serve, _setup, argv, startup_errors=(KeysFileError, TlsConfigError, TurnModelError)
    )


if __name__ == "__main__":
    sys.exit(main())
