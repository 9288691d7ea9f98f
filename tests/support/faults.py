"""Fault injection on a running `LocalStack`: crash, signal, wait for and restart one service.

The stack only starts and stops; breaking it on purpose is the tests' business."""

from __future__ import annotations

import os
import signal

from telugu_s2s.local.procs import StackError
from telugu_s2s.local.stack import LocalStack


def kill(stack: LocalStack, name: str) -> None:
    """SIGKILL a service (a crash: no drain, no cleanup) and wait until it is gone."""
    stack.service(name).kill()


def start(stack: LocalStack, name: str) -> None:
    """Start a service again (after `kill` or a crash) with the stack's configuration."""
    service = stack.service(name)
    if service.alive():
        raise StackError(f"{name} is already running")
    service.start()


def restart(stack: LocalStack, name: str, *, hard: bool = False) -> int | None:
    """Stop a service (SIGTERM and wait, or SIGKILL with hard=True) and start it again; returns
    the old process's exit code."""
    service = stack.service(name)
    if hard:
        pid = service.pid()
        service.kill()
        code = service.wait(5) if pid is not None else None
    else:
        code = service.stop()
    service.start()
    return code


def send_signal(stack: LocalStack, name: str, sig: int = signal.SIGTERM) -> None:
    """Signal a service's main process without waiting (e.g. SIGTERM to drain)."""
    pid = stack.pid(name)
    if pid is None:
        raise StackError(f"{name} is not running")
    os.kill(pid, sig)


def wait_exit(stack: LocalStack, name: str, timeout: float = 30.0) -> int | None:
    """Wait for a service's process to exit; its exit code."""
    return stack.service(name).wait(timeout)
