"""common.settings: one configuration mechanism for every service, the local stack and the CLI."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import pytest

from telugu_s2s.codec.config import Config as CodecConfig
from telugu_s2s.common import settings
from telugu_s2s.common.settings import SettingError, derived, setting
from telugu_s2s.context.config import Config as ContextConfig
from telugu_s2s.gateway.config import Config as GatewayConfig
from telugu_s2s.local.procs import StackError
from telugu_s2s.local.stack import StackConfig
from telugu_s2s.web.config import WebConfig


@dataclass(frozen=True)
class Sample:
    name: str = "a"
    count: int = 2
    ratio: float = 0.5
    on: bool = False
    where: Path = Path("/tmp")
    maybe: float | None = setting(None, parse=float)
    mode: str = setting("x", choices=("x", "y"))
    secret: str = setting("", env_only=True)
    renamed: str = setting("r", env="OTHER_NAME", flag="--alias")
    computed: int = derived(7)


def test_defaults_then_env_then_flags() -> None:
    assert settings.load(Sample, "T_", [], {}) == Sample()
    env = {"T_COUNT": "5", "T_RATIO": "0.25", "T_ON": "yes", "T_WHERE": "/srv", "T_MAYBE": "1.5", "T_SECRET": "s"}
    cfg = settings.load(Sample, "T_", ["--count", "9", "--no-on"], env)
    assert (cfg.count, cfg.ratio, cfg.on, cfg.where, cfg.maybe, cfg.secret) == (9, 0.25, False, Path("/srv"), 1.5, "s")
    assert settings.load(Sample, "T_", ["--alias", "f"], {"OTHER_NAME": "e"}).renamed == "f"
    assert settings.load(Sample, "T_", [], {"OTHER_NAME": "e", "T_RENAMED": "ignored"}).renamed == "e"
    assert settings.load(Sample, "T_", [], {"T_COUNT": ""}).count == 2  # empty = unset


def test_derived_and_secret_fields_are_not_flags() -> None:
    p = argparse.ArgumentParser()
    settings.add_flags(p, Sample)
    flags = {a.option_strings[0] for a in p._actions if a.option_strings}
    assert "--secret" not in flags and "--computed" not in flags and "--alias" in flags
    assert settings.load(Sample, "T_", [], {"T_COMPUTED": "1"}, extra={"computed": 3}).computed == 3
    with pytest.raises(SystemExit):  # argparse: usage line, status 2
        settings.load(Sample, "T_", ["--secret", "s"], {})


@pytest.mark.parametrize(
    ("env", "needle"),
    [
        ({"T_COUNT": "many"}, "T_COUNT='many': must be an integer"),
        ({"T_RATIO": "half"}, "T_RATIO='half': must be a number"),
        ({"T_ON": "maybe"}, "T_ON='maybe': must be 1 or 0"),
    ],
)
def test_a_bad_value_names_its_variable(env: dict[str, str], needle: str) -> None:
    with pytest.raises(SettingError, match=needle):
        settings.load(Sample, "T_", [], env)


def test_to_env_rebuilds_the_object() -> None:
    cfg = Sample(name="b", count=3, on=True, where=Path("/x"), maybe=2.0, secret="s", renamed="q")
    env = settings.to_env(cfg, "T_")
    assert env["T_ON"] == "1" and env["OTHER_NAME"] == "q" and "T_RATIO" not in env
    assert settings.load(Sample, "T_", [], env) == cfg


@pytest.mark.parametrize(
    "cfg",
    [
        GatewayConfig(port=6001, max_calls=3, auth="disabled", playback_lead_ms=0.0),
        CodecConfig(port=6002, weights="/w.th", allow_random_weights=True, bandwidth_kbps=3.0, max_batch=4),
        ContextConfig(port=6003, redis_url="redis://cache:6380/1", ttl_s=60.0, log_format="text"),
        WebConfig(port=8081, gateway_target="gw:1", max_sessions=2),
    ],
    ids=["gateway", "codec", "context", "web"],
)
def test_every_service_config_round_trips_through_its_environment(cfg) -> None:
    rebuilt = type(cfg).from_env([], env=cfg.to_env())
    assert settings.to_env(rebuilt, "") == settings.to_env(cfg, "")


def test_the_stack_flags_are_its_config_fields() -> None:
    p = argparse.ArgumentParser()
    settings.add_flags(p, StackConfig)
    a = p.parse_args(["--gateway-port", "1", "--codec-checkpoint", "/c", "--allow-random-weights", "--web-port", "0"])
    cfg = settings.from_args(StackConfig, a)
    assert (cfg.gateway_port, cfg.codec_checkpoint_dir, cfg.allow_random_weights, cfg.web_port) == (
        1,
        Path("/c"),
        True,
        0,
    )
    assert settings.from_args(StackConfig, p.parse_args([])) == StackConfig()


def test_codec_replicas_get_their_own_ports_and_one_gateway_target() -> None:
    one = StackConfig()
    assert one.codec_target == "127.0.0.1:50052" and [n for n, _, _ in one.codec_ports()] == ["codec"]
    two = StackConfig(codec_replicas=2)
    assert two.codec_ports() == [("codec", 50052, 9102), ("codec-2", 50152, 9202)]
    assert two.codec_target == "ipv4:127.0.0.1:50052,127.0.0.1:50152"
    assert {"codec-2", "codec-2 metrics"} <= set(two.ports())
    with pytest.raises(StackError, match="IPv4"):
        StackConfig(codec_replicas=2, host="localhost")
    with pytest.raises(StackError, match=">= 1"):
        StackConfig(codec_replicas=0)


def test_triton_replicas_get_their_own_ports_and_one_gateway_target() -> None:
    one = StackConfig()
    assert one.triton_target == "127.0.0.1:8001" and [n for n, *_ in one.triton_ports()] == ["triton"]
    two = StackConfig(triton_replicas=2)
    assert two.triton_ports() == [("triton", 8001, 8003, 8002), ("triton-2", 8101, 8103, 8102)]
    assert two.triton_target == "ipv4:127.0.0.1:8001,127.0.0.1:8101"
    assert {"triton-2 grpc", "triton-2 http", "triton-2 metrics"} <= set(two.ports())
    with pytest.raises(StackError, match=">= 1"):
        StackConfig(triton_replicas=0)
