"""docker-compose.yml: service graph, healthchecks, host ports, Triton variants, Redis AOF."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
APP_SERVICES = {"redis", "context", "codec", "triton", "triton-gpu", "gateway", "prometheus", "grafana"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


@pytest.fixture(scope="module")
def services(compose) -> dict:
    return compose["services"]


def host_port(mapping) -> str | None:
    """'50051:50051' / {'published': ...} -> the published host port."""
    if isinstance(mapping, dict):
        return str(mapping.get("published")) if mapping.get("published") else None
    parts = str(mapping).split(":")
    return parts[-2] if len(parts) >= 2 else None


def test_services_present(services) -> None:
    assert set(services) == APP_SERVICES


def test_every_service_has_a_healthcheck(services) -> None:
    for svc_name, svc in services.items():
        hc = svc.get("healthcheck")
        assert hc and hc["test"], svc_name
        assert hc["test"][0] in ("CMD", "CMD-SHELL"), svc_name
        assert hc.get("start_period"), svc_name


def test_grpc_services_use_the_grpc_health_probe(services) -> None:
    for svc_name, port in (("gateway", 50051), ("codec", 50052), ("context", 50053)):
        test = services[svc_name]["healthcheck"]["test"]
        assert test[1:4] == ["python", "-m", "telugu_s2s.common.healthcheck"], svc_name
        assert test[4] == f"127.0.0.1:{port}"
    for variant in ("triton", "triton-gpu"):
        assert "/v2/models/s2s_transformer/ready" in " ".join(services[variant]["healthcheck"]["test"])


def test_dependency_graph_waits_for_health(services) -> None:
    deps = {n: s.get("depends_on", {}) for n, s in services.items()}
    for n, d in deps.items():
        assert isinstance(d, dict), f"{n}: depends_on must use the long form with conditions"
        for target, cond in d.items():
            assert target in services, (n, target)
            assert cond["condition"] == "service_healthy", (n, target)
    assert set(deps["context"]) == {"redis"}
    assert set(deps["gateway"]) == {"codec", "context", "triton", "triton-gpu"}
    # Exactly one Triton variant runs, so neither is a hard requirement on its own.
    assert deps["gateway"]["triton"]["required"] is False
    assert deps["gateway"]["triton-gpu"]["required"] is False
    assert set(deps["grafana"]) == {"prometheus"}


def test_only_gateway_and_dashboards_publish_host_ports(services) -> None:
    published = {n: sorted(host_port(p) for p in s.get("ports", [])) for n, s in services.items() if s.get("ports")}
    assert published == {"gateway": ["50051"], "prometheus": ["9090"], "grafana": ["3000"]}


def test_gateway_targets_use_service_names_and_agreed_ports(services) -> None:
    env = services["gateway"]["environment"]
    assert env["TS2S_GATEWAY_CODEC_TARGET"] == "codec:50052"
    assert env["TS2S_GATEWAY_CONTEXT_TARGET"] == "context:50053"
    assert env["TS2S_GATEWAY_TRITON_TARGET"] == "s2s-triton:8001"
    for variant in ("triton", "triton-gpu"):
        assert "s2s-triton" in services[variant]["networks"]["default"]["aliases"]
    drain = float(env["TS2S_GATEWAY_DRAIN_GRACE_S"])
    assert float(services["gateway"]["stop_grace_period"].rstrip("s")) > drain


def test_triton_variants_profiles_shm_and_gpu(services) -> None:
    cpu, gpu = services["triton"], services["triton-gpu"]
    assert cpu["profiles"] == ["cpu"] and gpu["profiles"] == ["gpu"]
    for svc in (cpu, gpu):
        assert svc["shm_size"] and svc["shm_size"] not in ("64m", "64mb")
        assert svc["build"]["dockerfile"] == "services/s2s/Dockerfile"
        assert "./models/s2s:/models/s2s:ro" in svc["volumes"]
    assert cpu["environment"]["TS2S_S2S_DEVICE"] == "cpu"
    assert gpu["environment"]["TS2S_S2S_DEVICE"] == "cuda"
    (device,) = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and "gpu" in device["capabilities"]
    assert "deploy" not in cpu


def test_grafana_is_optional(services) -> None:
    assert services["grafana"]["profiles"] == ["dashboards"]
    for n, s in services.items():
        if n not in ("triton", "triton-gpu", "grafana"):
            assert "profiles" not in s, n


def test_redis_aof_and_volume(compose, services) -> None:
    redis = services["redis"]
    cmd = redis["command"]
    assert cmd[cmd.index("--appendonly") + 1] == "yes"
    assert any(v.split(":")[0] == "redis-data" and v.split(":")[1] == "/data" for v in redis["volumes"])
    assert "redis-data" in compose["volumes"]
    ctx = services["context"]["environment"]
    assert ctx["TS2S_CONTEXT_REDIS_URL"].startswith("redis://redis:6379")


def test_build_files_and_mounted_config_exist(services) -> None:
    for n, s in services.items():
        if "build" in s:
            assert (ROOT / s["build"]["context"] / s["build"]["dockerfile"]).is_file(), n
        for vol in s.get("volumes", []):
            src = vol.split(":")[0]
            if src.startswith("./deploy/"):
                assert (ROOT / src).exists(), (n, src)
