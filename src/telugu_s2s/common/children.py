"""Child processes that die with the stack, however the stack dies.

`telugu-s2s up` stops its children in order on Ctrl-C or SIGTERM, but a parent killed hard
(SIGKILL, the OOM killer, a crashed test runner) runs no cleanup. On Linux the kernel can
signal a child when its parent dies (PR_SET_PDEATHSIG); `die_with_parent()` asks for SIGTERM,
so redis still writes its AOF and the services drain as on a normal stop.

The kernel signals when the *thread* that started the child ends, so a child started from
another thread is not tied (it would die with that thread); atexit and the stack's own stop
cover those.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1


def die_with_parent() -> Callable[[], None] | None:
    """A `preexec_fn` for subprocess.Popen; None off Linux and off the main thread."""
    if not sys.platform.startswith("linux") or threading.current_thread() is not threading.main_thread():
        return None
    parent = os.getpid()

    def preexec() -> None:
        try:
            ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
        except (OSError, AttributeError):
            return
        if os.getppid() != parent:  # the parent died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec
