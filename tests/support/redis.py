"""redis-server fixtures, built on `telugu_s2s.context.redis_local.LocalRedis`.

- `redis_server` (session scope): one server shared by the whole test session. Tests that
  use it must keep to their own keys (a unique key prefix: `redis_key_prefix`) and must
  never stop, restart or flush it.
- `redis_server_factory` (function scope): `start(**LocalRedis kwargs) -> LocalRedis`
  starts a private server (free port, data dir under tmp_path, ready to use); every server
  it started is stopped after the test. Use it to kill, restart or password-protect Redis.

redis-server missing is an error with the install command, not a skip: these tests are
how the project proves its Redis behaviour.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from telugu_s2s.context.redis_local import LocalRedis

RedisFactory = Callable[..., LocalRedis]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRedis]:
    server = LocalRedis(tmp_path_factory.mktemp("redis-shared"))
    server.start().wait_ready()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_server_factory(tmp_path: Path) -> Iterator[RedisFactory]:
    started: list[LocalRedis] = []

    def start(**kwargs: object) -> LocalRedis:
        kwargs.setdefault("data_dir", tmp_path / f"redis-{len(started)}")
        server = LocalRedis(**kwargs)  # type: ignore[arg-type]
        started.append(server)
        server.start().wait_ready()
        return server

    try:
        yield start
    finally:
        for server in started:
            server.stop()


@pytest.fixture
def redis_key_prefix() -> str:
    """A key prefix no other test uses (for tests sharing `redis_server`)."""
    return f"test:{secrets.token_hex(4)}:"
