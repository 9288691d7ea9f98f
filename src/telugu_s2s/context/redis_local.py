"""Start and stop a local `redis-server` process (the local stack and the tests use it).

Listens on 127.0.0.1 only (TCP, a free port unless one is given) or on a Unix socket.
Data lives in `data_dir`; with `appendonly=True` every write is in the append-only file
(`appendfsync always` by default), so a restart or even a SIGKILL loses nothing that Redis
acknowledged. RDB snapshots are off. A password, when given, goes into a config file
(mode 0600) in the data dir, never on the command line.

    server = LocalRedis(data_dir=Path(".run/redis"), appendonly=True)
    server.start(); server.wait_ready()
    ... server.url ...
    server.restart()   # same port, same data
    server.stop()      # SIGTERM, returns the exit code
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from telugu_s2s.common.children import die_with_parent

LOCALHOST = "127.0.0.1"


class RedisLaunchError(RuntimeError):
    pass


def find_free_port(host: str = LOCALHOST) -> int:
    """A TCP port that was free a moment ago (bind to port 0 and release it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def redis_server_path() -> str | None:
    return shutil.which("redis-server")


class LocalRedis:
    def __init__(
        self,
        data_dir: Path | str | None = None,
        *,
        port: int = 0,
        unix_socket: Path | str | None = None,
        appendonly: bool = False,
        appendfsync: str = "always",
        password: str | None = None,
        executable: str | None = None,
        extra_config: dict[str, str] | None = None,
    ) -> None:
        """port 0 = pick a free port (kept across restarts). With `unix_socket`, no TCP."""
        exe = executable or redis_server_path()
        if not exe:
            raise RedisLaunchError(
                "redis-server is not installed; install it with `apt-get install redis-server` "
                "(or `make apt`), or use TS2S_CONTEXT_REDIS_URL=memory:// for one process"
            )
        if appendfsync not in ("always", "everysec", "no"):
            raise ValueError(f"appendfsync must be always, everysec or no, got {appendfsync!r}")
        self.executable = exe
        self._own_tmp = data_dir is None
        self.data_dir = Path(data_dir) if data_dir is not None else Path(tempfile.mkdtemp(prefix="ts2s-redis-"))
        self.unix_socket = Path(unix_socket) if unix_socket is not None else None
        self.port = 0 if self.unix_socket else (port or find_free_port())
        self._port_given = bool(port)
        self.appendonly = appendonly
        self.appendfsync = appendfsync
        self.password = password
        self.extra_config = dict(extra_config or {})
        self.proc: subprocess.Popen[bytes] | None = None

    # -- addresses

    @property
    def host(self) -> str:
        return LOCALHOST

    @property
    def url(self) -> str:
        """URL for TS2S_CONTEXT_REDIS_URL (without the password)."""
        if self.unix_socket:
            return f"unix://{self.unix_socket}"
        return f"redis://{LOCALHOST}:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "redis.log"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # -- lifecycle

    def _write_config(self) -> Path:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        lines = {
            "bind": LOCALHOST,
            "protected-mode": "yes",
            "port": str(self.port),
            "dir": str(self.data_dir.resolve()),
            "logfile": str(self.log_path.resolve()),
            "daemonize": "no",
            "save": '""',
            "appendonly": "yes" if self.appendonly else "no",
            "appendfsync": self.appendfsync,
        }
        if self.unix_socket:
            lines["unixsocket"] = str(self.unix_socket.resolve())
            lines["unixsocketperm"] = "700"
        if self.password:
            lines["requirepass"] = '"' + self.password.replace("\\", "\\\\").replace('"', '\\"') + '"'
        lines.update(self.extra_config)
        path = self.data_dir / "redis.conf"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write("".join(f"{k} {v}\n" for k, v in lines.items()))
        return path

    def start(self) -> LocalRedis:
        """Spawn redis-server (does not wait; call wait_ready())."""
        if self.running:
            raise RedisLaunchError(f"redis-server already running (pid {self.proc.pid if self.proc else '?'})")
        conf = self._write_config()
        try:
            self.proc = subprocess.Popen(
                [self.executable, str(conf)],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                start_new_session=True,
                preexec_fn=die_with_parent(),
            )
        except OSError as exc:
            raise RedisLaunchError(f"cannot run {self.executable}: {exc.strerror or exc}") from exc
        return self

    def wait_ready(self, timeout: float = 10.0) -> LocalRedis:
        """Wait until redis answers PING (and has loaded its data). A port that a race
        took meanwhile is replaced by another free one when the port was not given."""
        deadline = time.monotonic() + timeout
        delay = 0.005
        while True:
            if self.proc is None:
                raise RedisLaunchError("redis-server was not started")
            if self.proc.poll() is not None:
                tail = self.log_tail()
                if not self._port_given and not self.unix_socket and "Address already in use" in tail:
                    self.port = find_free_port()
                    self.start()
                    continue
                raise RedisLaunchError(
                    f"redis-server exited with code {self.proc.returncode}; log {self.log_path}:\n{tail}"
                )
            if self._ping():
                return self
            if time.monotonic() > deadline:
                raise RedisLaunchError(
                    f"redis-server not ready after {timeout:g} s; log {self.log_path}:\n{self.log_tail()}"
                )
            time.sleep(delay)
            delay = min(delay * 2, 0.1)

    def _ping(self) -> bool:
        cmd = b"PING\r\n"
        if self.password:
            pw = self.password.encode()
            cmd = b"*2\r\n$4\r\nAUTH\r\n$%d\r\n%s\r\n" % (len(pw), pw) + cmd
        try:
            if self.unix_socket:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                target: str | tuple[str, int] = str(self.unix_socket)
            else:
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                target = (LOCALHOST, self.port)
            with s:
                s.settimeout(1.0)
                s.connect(target)
                s.sendall(cmd)
                data = b""
                while b"PONG" not in data and b"LOADING" not in data and b"-" not in data[:1]:
                    chunk = s.recv(256)
                    if not chunk:
                        break
                    data += chunk
                return b"+PONG" in data
        except OSError:
            return False

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM and wait (redis flushes the AOF); SIGKILL after `timeout`. Returns the exit code."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL: a crash. Only what is already in the AOF survives."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def restart(self, timeout: float = 10.0, *, hard: bool = False) -> LocalRedis:
        """Stop (or kill, with hard=True) and start again on the same port and data dir."""
        self.kill() if hard else self.stop()
        self.start()
        self.wait_ready(timeout)
        return self

    def cleanup(self) -> None:
        """Stop and remove the data dir when this object created it."""
        self.stop()
        if self._own_tmp:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def log_tail(self, n: int = 20) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        except OSError:
            return "(no log)"

    def __enter__(self) -> LocalRedis:
        return self.start().wait_ready()

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


def start_local_redis(
    data_dir: Path | str, *, port: int = 0, appendonly: bool = True, timeout: float = 10.0
) -> LocalRedis | None:
    """For the local stack: start redis-server (AOF on, appendfsync always) in `data_dir` and
    wait until it is ready; None when redis-server is not installed (then use memory://).
    Pass `server.url` as TS2S_CONTEXT_REDIS_URL and call `server.stop()` on the way out."""
    if redis_server_path() is None:
        return None
    server = LocalRedis(data_dir, port=port, appendonly=appendonly)
    server.start()
    try:
        server.wait_ready(timeout)
    except RedisLaunchError:
        server.stop()
        raise
    return server
