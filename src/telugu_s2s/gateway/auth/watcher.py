"""Live keys: the keys file re-read when it changes, and on SIGHUP."""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from pathlib import Path

from telugu_s2s.gateway.auth.keys import KeysFileError, load_keys
from telugu_s2s.gateway.auth.limits import Authenticator

log = logging.getLogger(__name__)


class KeysWatcher:
    """Re-reads the keys file when it changes, and on `request_reload()` (SIGHUP).

    A change is any change of the file's resolved path, inode, size or mtime, checked every
    `interval_s`: an in-place write, an atomic rename, and the `..data` symlink swap by which
    Kubernetes updates a mounted Secret all show. A file that fails to parse keeps the last
    good set (one ERROR log line per bad version, `on_result("error")`).
    """

    def __init__(
        self,
        path: str | Path,
        auth: Authenticator,
        interval_s: float = 2.0,
        on_result: Callable[[str], None] | None = None,
    ) -> None:
        self.path = Path(path)
        self.auth = auth
        self.interval_s = interval_s
        self.on_result = on_result or (lambda result: None)
        self._seen = self._signature()
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None

    def _signature(self) -> tuple | None:
        try:
            st = os.stat(self.path)
        except OSError:
            return None
        return os.path.realpath(self.path), st.st_ino, st.st_size, st.st_mtime_ns

    def request_reload(self) -> None:
        self._wake.set()

    def check(self, force: bool = False) -> str:
        """Reload if the file changed (or `force`): "reloaded", "unchanged" or "error"."""
        sig = self._signature()
        if not force and sig == self._seen:
            return "unchanged"
        self._seen = sig
        try:
            entries = load_keys(self.path)
        except KeysFileError as exc:
            log.error("API keys file not reloaded, the last good keys stay in force: %s", exc)
            self.on_result("error")
            return "error"
        self.auth.replace_entries(entries)
        log.info(
            "API keys reloaded", extra={"keys": len(entries), "tenants": len({e.tenant for e in entries.values()})}
        )
        self.on_result("ok")
        return "reloaded"

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), self.interval_s)
            except TimeoutError:
                pass
            force = self._wake.is_set()
            self._wake.clear()
            self.check(force=force)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="keys-watcher")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
