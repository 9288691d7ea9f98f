"""Prometheus scrape config, alert rules and the Grafana dashboard."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"


@pytest.fixture(scope="module")
def alerts() -> dict:
    return yaml.safe_load((DEPLOY / "prometheus" / "alerts.yml").read_text())


def rules(alerts: dict) -> dict[str, dict]:
    return {r["alert"]: r for g in alerts["groups"] for r in g["rules"]}


def test_scrape_jobs_match_compose_services_and_agreed_metrics_ports() -> None:
    prom = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    assert prom["rule_files"] == ["/etc/prometheus/alerts.yml"]
    targets = {j["job_name"]: j["static_configs"][0]["targets"] for j in prom["scrape_configs"]}
    assert targets["gateway"] == ["gateway:9101"]
    assert targets["codec"] == ["codec:9102"]
    assert targets["context"] == ["context:9103"]
    assert targets["triton"] == ["s2s-triton:8002"]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]
    assert "./deploy/prometheus/alerts.yml:/etc/prometheus/alerts.yml:ro" in compose["prometheus"]["volumes"]


def test_latency_alert_is_p95_over_150ms_for_5m(alerts) -> None:
    r = rules(alerts)["TeluguS2SResponseLatencyHigh"]
    expr = " ".join(r["expr"].split())
    assert "histogram_quantile(0.95," in expr
    assert "rate(telugu_s2s_gateway_response_latency_seconds_bucket[5m])" in expr
    assert re.search(r"\)\s*>\s*0\.150?$", expr)
    assert r["for"] == "5m"


def test_error_rate_and_down_alerts(alerts) -> None:
    r = rules(alerts)
    assert "telugu_s2s_gateway_errors_total" in r["TeluguS2SErrorRateHigh"]["expr"]
    down = r["TeluguS2SServiceDown"]
    assert "up{" in down["expr"] and "== 0" in down["expr"]
    for job in ("gateway", "codec", "context", "triton"):
        assert job in down["expr"]
    for rule in r.values():
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"]


def test_dashboard_covers_the_required_signals() -> None:
    dash = json.loads((DEPLOY / "grafana" / "telugu-s2s.json").read_text())
    exprs = " ".join(t["expr"] for p in dash["panels"] for t in p.get("targets", []))
    for metric in ("telugu_s2s_gateway_response_latency_seconds_bucket",
                   "telugu_s2s_gateway_voice_to_voice_seconds_bucket",
                   "telugu_s2s_gateway_barge_in_stop_seconds_bucket",
                   "telugu_s2s_gateway_active_calls",
                   "telugu_s2s_gateway_interruptions_total",
                   "telugu_s2s_gateway_errors_total",
                   "telugu_s2s_codec_batch_streams",
                   "nv_inference_queue_duration_us"):
        assert metric in exprs, metric
    for q in ("0.5", "0.95", "0.99"):
        assert f"histogram_quantile({q}," in exprs
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids))
    assert dash["uid"] == "telugu-s2s"


def test_grafana_provisioning_points_at_the_dashboard() -> None:
    prov = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/telugu-s2s.yml").read_text())
    path = prov["providers"][0]["options"]["path"]
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["grafana"]
    assert f"./deploy/grafana/telugu-s2s.json:{path}/telugu-s2s.json:ro" in compose["volumes"]
    ds = yaml.safe_load((DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text())
    assert ds["datasources"][0]["url"] == "http://prometheus:9090"


@pytest.mark.parametrize(("source", "copy"), [
    ("deploy/prometheus/alerts.yml", "deploy/helm/telugu-s2s/files/alerts.yml"),
    ("deploy/grafana/telugu-s2s.json", "deploy/helm/telugu-s2s/files/telugu-s2s.json"),
])
def test_chart_copies_are_identical(source: str, copy: str) -> None:
    assert (ROOT / copy).read_bytes() == (ROOT / source).read_bytes(), f"cp {source} {copy}"
