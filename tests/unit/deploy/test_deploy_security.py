"""Chart and compose: API keys from a Secret, optional TLS on the public port, no secret values."""

from __future__ import annotations

import pytest
import yaml

from .conftest import KUBE_VERSIONS, ROOT, name, render_chart, validate_strict

helm = pytest.importorskip("helm_python")


def _gateway(rendered) -> tuple[dict, dict]:
    dep = rendered.get("Deployment", name("gateway"))
    pod = dep["spec"]["template"]["spec"]
    return pod, next(c for c in pod["containers"] if c["name"] == "gateway")


def _env(container) -> dict:
    return {e["name"]: e for e in container["env"]}


def test_keys_are_required_by_default_from_a_mounted_secret(defaults) -> None:
    pod, c = _gateway(defaults)
    env = _env(c)
    assert env["TS2S_GATEWAY_AUTH"]["value"] == "required"
    keys_path = env["TS2S_GATEWAY_API_KEYS_FILE"]["value"]
    mount = next(m for m in c["volumeMounts"] if m["name"] == "api-keys")
    assert mount["readOnly"] and keys_path == f"{mount['mountPath']}/keys.json"
    vol = next(v for v in pod["volumes"] if v["name"] == "api-keys")
    assert vol["secret"]["secretName"] == "telugu-s2s-api-keys"
    assert vol["secret"]["items"] == [{"key": "keys.json", "path": "keys.json"}]
    # Group-readable only, by the pod's fsGroup (the containers run as non-root).
    assert vol["secret"]["defaultMode"] == 0o440 and pod["securityContext"]["fsGroup"]
    # Plaintext by default, with the native gRPC readiness probe.
    assert "TS2S_GATEWAY_TLS_CERT_FILE" not in env and "grpc" in c["readinessProbe"]


def test_tls_secret_and_exec_probe(chart) -> None:
    values = {"gateway": {"tls": {"secretName": "gw-tls", "serverName": "voice.example.com"},
                          "auth": {"existingSecret": "acme-keys", "secretKey": "keys.yaml"}}}
    rendered = render_chart(chart, values)
    pod, c = _gateway(rendered)
    env = _env(c)
    assert env["TS2S_GATEWAY_TLS_CERT_FILE"]["value"] == "/etc/telugu-s2s/tls/tls.crt"
    assert env["TS2S_GATEWAY_TLS_KEY_FILE"]["value"] == "/etc/telugu-s2s/tls/tls.key"
    assert env["TS2S_GATEWAY_API_KEYS_FILE"]["value"] == "/etc/telugu-s2s/api-keys/keys.yaml"
    assert next(v for v in pod["volumes"] if v["name"] == "tls")["secret"]["secretName"] == "gw-tls"
    assert next(v for v in pod["volumes"] if v["name"] == "api-keys")["secret"]["secretName"] == "acme-keys"
    probe = c["readinessProbe"]
    assert "grpc" not in probe
    cmd = probe["exec"]["command"]
    assert cmd[:3] == ["python", "-m", "telugu_s2s.security.healthcheck"]
    assert "--server-name=voice.example.com" in cmd and "--ca-file=/etc/telugu-s2s/tls/ca.crt" in cmd
    for version in KUBE_VERSIONS:
        for doc in rendered.docs:
            validate_strict(doc, version)


def test_tls_needs_a_server_name(chart) -> None:
    with pytest.raises(helm.HelmError, match="serverName"):
        render_chart(chart, {"gateway": {"tls": {"secretName": "gw-tls"}}})


def test_dev_mode_mounts_no_keys(chart) -> None:
    rendered = render_chart(chart, {"gateway": {"auth": {"mode": "disabled", "existingSecret": ""}}})
    pod, c = _gateway(rendered)
    assert _env(c)["TS2S_GATEWAY_AUTH"]["value"] == "disabled"
    assert "TS2S_GATEWAY_API_KEYS_FILE" not in _env(c)
    assert all(v["name"] != "api-keys" for v in pod["volumes"])


def test_required_mode_needs_a_secret(chart) -> None:
    with pytest.raises(helm.HelmError, match="existingSecret"):
        render_chart(chart, {"gateway": {"auth": {"existingSecret": ""}}})


@pytest.mark.parametrize("values, key", [
    ({"gateway": {"auth": {"mode": "off"}}}, "mode"),
    ({"gateway": {"auth": {"apiKey": "ts2s_x"}}}, "apiKey"),
    ({"gateway": {"tls": {"cert": "PEM"}}}, "cert"),
])
def test_schema_rejects_bad_security_values(chart, values, key) -> None:
    with pytest.raises(helm.HelmValuesError, match=key):
        chart.validate_schema(values)


def test_no_secret_values_in_gateway_env(defaults) -> None:
    _, c = _gateway(defaults)
    # Only file paths reach the environment: no key material, no Secret values in env.
    assert all("valueFrom" not in e and not str(e["value"]).startswith("ts2s_") for e in c["env"])


def test_compose_gateway_reads_keys_from_a_secret() -> None:
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    gw = compose["services"]["gateway"]
    assert gw["environment"]["TS2S_GATEWAY_API_KEYS_FILE"] == "/run/secrets/api_keys"
    assert gw["environment"]["TS2S_GATEWAY_AUTH"].endswith(":-required}")
    assert gw["secrets"] == ["api_keys"]
    assert "api-keys.json" in compose["secrets"]["api_keys"]["file"]
    # Internal services publish no host ports (only the gateway does).
    for svc in ("codec", "context"):
        assert not compose["services"][svc].get("ports")
