"""How every service's `python -m` entry point ends when it cannot run.

A bad setting (flag, environment variable, keys or TLS file) or a failure to start (port in
use, weights missing) is one line on stderr, `<service>: <what is wrong>`, and exit status
2, never a traceback. Flags argparse refuses keep argparse's own usage line and status 2.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TypeVar

from telugu_s2s.common.service import PortInUseError

C = TypeVar("C")

BAD_SETTING = 2


def run_service(
    name: str,
    build_config: Callable[[Sequence[str]], C],
    serve: Callable[[C], Coroutine[Any, Any, None]],
    setup: Callable[[C], None] = lambda cfg: None,
    argv: Sequence[str] | None = None,
    startup_errors: tuple[type[BaseException], ...] = (),
) -> int:
    """Build the config from `argv` (default: the command line), set up logging (`setup`), run
    `serve(cfg)` to its end; 0 on a clean stop.

    `startup_errors`: what else `serve` raises for a setting it finds bad only when it starts."""
    try:
        cfg = build_config(sys.argv[1:] if argv is None else list(argv))
    except ValueError as exc:  # every config error is a ValueError
        print(f"{name}: configuration error: {exc}", file=sys.stderr)
        return BAD_SETTING
    setup(cfg)
    errors: tuple[type[BaseException], ...] = (PortInUseError, *startup_errors)
    try:
        asyncio.run(serve(cfg))
    except errors as exc:
        print(f"{name}: cannot start: {exc}", file=sys.stderr)
        return BAD_SETTING
    except KeyboardInterrupt:
        return 0
    return 0
