"""Config.from_env: defaults, env and flags, password sources, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from telugu_s2s.context.config import Config, ConfigError
from telugu_s2s.context.memory_store import MemoryStore
from telugu_s2s.context.redis_store import RedisStore
from telugu_s2s.context.store import open_store


def test_defaults() -> None:
    cfg = Config.from_env([], env={})
    assert (cfg.port, cfg.metrics_port, cfg.ttl_s, cfg.max_turns) == (50053, 9103, 86400.0, 10)
    assert cfg.redis_url == "memory://" and cfg.is_memory and cfg.redis_password is None


def test_env_and_flags() -> None:
    env = {
        "TS2S_CONTEXT_PORT": "6000",
        "TS2S_CONTEXT_REDIS_URL": "redis://cache.internal:6380/2",
        "TS2S_CONTEXT_TTL_S": "3600",
        "TS2S_CONTEXT_MAX_TURNS": "12",
        "TS2S_CONTEXT_KEY_PREFIX": "prod:",
        "TS2S_CONTEXT_REDIS_PASSWORD": "pw",
    }
    cfg = Config.from_env(["--max-turns", "5"], env=env)
    assert (cfg.port, cfg.ttl_s, cfg.max_turns, cfg.key_prefix) == (6000, 3600.0, 5, "prod:")
    assert cfg.redis_password == "pw" and "pw" not in repr(cfg)
    assert cfg.redis_address() == "cache.internal:6380"


def test_password_file(tmp_path: Path) -> None:
    f = tmp_path / "pw"
    f.write_text("s3cret\n")
    cfg = Config.from_env([], env={"TS2S_CONTEXT_REDIS_PASSWORD_FILE": str(f)})
    assert cfg.redis_password == "s3cret"
    with pytest.raises(ConfigError, match="cannot read"):
        Config.from_env([], env={"TS2S_CONTEXT_REDIS_PASSWORD_FILE": str(tmp_path / "missing")})
    with pytest.raises(ConfigError, match="only one"):
        Config.from_env([], env={"TS2S_CONTEXT_REDIS_PASSWORD_FILE": str(f), "TS2S_CONTEXT_REDIS_PASSWORD": "x"})


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"TS2S_CONTEXT_REDIS_URL": "redis://:pw@host:6379/0"}, "must not carry a password"),
        ({"TS2S_CONTEXT_REDIS_URL": "http://host"}, "must start with redis://"),
        ({"TS2S_CONTEXT_TTL_S": "0"}, "TS2S_CONTEXT_TTL_S"),
        ({"TS2S_CONTEXT_TTL_S": "soon"}, "must be a number"),
        ({"TS2S_CONTEXT_MAX_TURNS": "0"}, "TS2S_CONTEXT_MAX_TURNS"),
        ({"TS2S_CONTEXT_PORT": "70000"}, "TS2S_CONTEXT_PORT"),
        ({"TS2S_CONTEXT_MAX_SESSION_BYTES": "10"}, "TS2S_CONTEXT_MAX_SESSION_BYTES"),
        ({"TS2S_CONTEXT_REDIS_TLS_VERIFY": "maybe"}, "TS2S_CONTEXT_REDIS_TLS_VERIFY"),
    ],
)
def test_bad_settings_name_the_variable(env: dict[str, str], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle):
        Config.from_env([], env=env)


async def test_open_store_picks_the_backend(caplog: pytest.LogCaptureFixture) -> None:
    mem = open_store(Config.from_env([], env={}))
    assert isinstance(mem, MemoryStore)
    assert "NOT for more than one replica" in mem.description
    assert any("do NOT run more than one replica" in r.getMessage() for r in caplog.records)

    cfg = Config.from_env([], env={
        "TS2S_CONTEXT_REDIS_URL": "rediss://cache.internal:6380/0",
        "TS2S_CONTEXT_REDIS_TLS_CA_FILE": "/etc/ca.pem",
    })
    red = open_store(cfg)
    assert isinstance(red, RedisStore) and red.address == "cache.internal:6380"
    kw = red._r.connection_pool.connection_kwargs
    assert kw["ssl_ca_certs"] == "/etc/ca.pem" and kw["ssl_cert_reqs"] == "required"
    await red.close()
