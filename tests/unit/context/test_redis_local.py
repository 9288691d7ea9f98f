"""LocalRedis: free port or socket, readiness, restart on the same port, clear failures."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import redis

from telugu_s2s.context.redis_local import LocalRedis, RedisLaunchError

from tests.support.ports import free_port

pytestmark = pytest.mark.e2e


def test_tcp_restart_keeps_port_and_aof_data(tmp_path: Path) -> None:
    server = LocalRedis(tmp_path / "r", appendonly=True)
    with server:
        assert server.url == f"redis://127.0.0.1:{server.port}/0"
        client = redis.Redis(host="127.0.0.1", port=server.port)
        client.set("k", "v")
        port = server.port
        server.restart()
        assert server.port == port and client.get("k") == b"v"
        server.restart(hard=True)
        assert client.get("k") == b"v"
        client.close()
        assert server.stop() == 0
    assert not server.running


def test_without_aof_data_is_gone_after_restart(tmp_path: Path) -> None:
    with LocalRedis(tmp_path / "r") as server:
        client = redis.Redis(host="127.0.0.1", port=server.port)
        client.set("k", "v")
        server.restart()
        assert client.get("k") is None
        client.close()


def test_unix_socket_with_password(tmp_path: Path) -> None:
    sock = tmp_path / "redis.sock"
    with LocalRedis(tmp_path / "r", unix_socket=sock, password='p"w') as server:
        assert server.url == f"unix://{sock}"
        client = redis.Redis(unix_socket_path=str(sock), password='p"w')
        assert client.ping() is True
        client.close()
        assert (tmp_path / "r" / "redis.conf").stat().st_mode & 0o077 == 0


def test_port_taken_is_a_clear_error(tmp_path: Path) -> None:
    port = free_port()
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", port))
        holder.listen()
        server = LocalRedis(tmp_path / "r", port=port)
        server.start()
        with pytest.raises(RedisLaunchError, match="exited"):
            server.wait_ready(timeout=10)


def test_missing_executable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(RedisLaunchError, match="cannot run"):
        LocalRedis(tmp_path, executable=str(tmp_path / "no-such-redis-server")).start()
    monkeypatch.setattr("telugu_s2s.context.redis_local.shutil.which", lambda name: None)
    with pytest.raises(RedisLaunchError, match="apt-get install redis-server"):
        LocalRedis(tmp_path)


def test_start_local_redis_for_the_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from telugu_s2s.context.redis_local import start_local_redis

    server = start_local_redis(tmp_path / "stack")
    assert server is not None
    try:
        assert server.appendonly and server.running
        client = redis.Redis.from_url(server.url)
        assert client.ping() is True
        client.close()
    finally:
        assert server.stop() == 0
    monkeypatch.setattr("telugu_s2s.context.redis_local.shutil.which", lambda name: None)
    assert start_local_redis(tmp_path / "none") is None
