"""The Helm chart, rendered with the real Helm engine and validated against Kubernetes schemas."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml
from tests.unit.deploy.conftest import (
    CHART_DIR,
    KUBE_VERSIONS,
    MONITORING_APIS,
    ROOT,
    Rendered,
    helm,
    kubernetes_validate,
    name,
    render_chart,
    validate_strict,
)

GRPC_COMPONENTS = {"gateway": 50051, "codec": 50052, "context": 50053}

VALUE_SETS: dict[str, tuple[dict[str, Any], tuple[str, ...]]] = {
    "defaults": ({}, ()),
    "gpu-off": ({"triton": {"gpu": {"enabled": False}, "tolerations": []}}, ()),
    "autoscaling-off": (
        {c: {"autoscaling": {"enabled": False}} for c in ("gateway", "codec", "triton")},
        (),
    ),
    "external-redis": (
        {
            "redis": {"enabled": False},
            "externalRedis": {"url": "rediss://redis.example.internal:6380/0", "existingSecret": "redis-auth"},
        },
        (),
    ),
    "monitoring-on": (
        {"monitoring": {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True},
                        "grafanaDashboard": {"enabled": True}}},
        MONITORING_APIS,
    ),
    "public-gpu-codec-baked": (
        {
            "gateway": {"service": {"type": "LoadBalancer", "externalTrafficPolicy": "Local",
                                    "loadBalancerSourceRanges": ["10.0.0.0/8"]},
                        "ingress": {"enabled": True, "tls": [{"secretName": "s2s-tls", "hosts": ["s2s.example.com"]}]},
                        "autoscaling": {"activeCalls": {"enabled": True}}},
            "codec": {"device": "cuda", "gpu": {"enabled": True}},
            "triton": {"checkpoint": {"baked": True}, "autoscaling": {"gpuUtilization": {"enabled": True}}},
            "models": {"volume": {"hostPath": {"path": "/mnt/models", "type": "Directory"}}},
            "networkPolicy": {"gateway": {"from": [{"ipBlock": {"cidr": "10.0.0.0/8"}}]}},
        },
        (),
    ),
}


@pytest.fixture(scope="module")
def rendered(chart) -> dict[str, Rendered]:
    return {key: render_chart(chart, values, apis) for key, (values, apis) in VALUE_SETS.items()}


def containers(workload: dict[str, Any]) -> list[dict[str, Any]]:
    return workload["spec"]["template"]["spec"]["containers"]


def env_of(container: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {e["name"]: e for e in container.get("env", [])}


def workloads(r: Rendered) -> list[dict[str, Any]]:
    return r.all("Deployment") + r.all("StatefulSet")


# --- lint and schema-level validation -------------------------------------------------------


def test_lint_has_no_errors_or_warnings() -> None:
    report = helm.lint(str(CHART_DIR), strict=True, namespace="speech")
    assert report["errors"] == []
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert problems == []


@pytest.mark.parametrize("key", list(VALUE_SETS))
def test_every_manifest_validates_strictly(rendered, key: str) -> None:
    r = rendered[key]
    assert r.docs, "nothing rendered"
    versions = KUBE_VERSIONS if key == "defaults" else KUBE_VERSIONS[-1:]
    for doc in r.docs:
        if doc["apiVersion"].startswith("monitoring.coreos.com/"):
            # CRDs of prometheus-operator: no schema in kubernetes-validate, checked below.
            continue
        for version in versions:
            validate_strict(doc, version)


def test_strict_validation_catches_unknown_fields(defaults) -> None:
    """The validator the other tests rely on really rejects a misspelt field."""
    bad = copy.deepcopy(defaults.get("Deployment", name("gateway")))
    bad["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {"grpc": {"port": 1}}
    with pytest.raises(kubernetes_validate.ValidationError):
        validate_strict(bad, KUBE_VERSIONS[-1])


# --- what the defaults contain ------------------------------------------------------------


def test_default_objects(defaults) -> None:
    kinds = defaults.kinds()
    for c in ("gateway", "codec", "context", "triton"):
        assert ("Deployment", name(c)) in kinds
        assert ("PodDisruptionBudget", name(c)) in kinds
        assert ("NetworkPolicy", name(c)) in kinds
    for c in ("gateway", "codec", "triton"):
        assert ("HorizontalPodAutoscaler", name(c)) in kinds
    assert ("HorizontalPodAutoscaler", name("context")) not in kinds
    assert ("StatefulSet", name("redis")) in kinds
    assert ("Secret", name("redis")) in kinds
    assert not defaults.all("Ingress")
    assert not defaults.all("ServiceMonitor") and not defaults.all("PrometheusRule")
    # Every object carries the standard labels.
    for doc in defaults.docs:
        labels = doc["metadata"]["labels"]
        assert labels["app.kubernetes.io/instance"] == "demo"
        assert labels["app.kubernetes.io/name"] == "telugu-s2s"


def test_grpc_services_probe_grpc_health_and_liveness_differs(defaults) -> None:
    for component, port in GRPC_COMPONENTS.items():
        (c,) = containers(defaults.get("Deployment", name(component)))
        assert {"name": "grpc", "containerPort": port, "protocol": "TCP"} in c["ports"]
        assert c["readinessProbe"]["grpc"]["port"] == port
        assert c["livenessProbe"] != c["readinessProbe"]
        assert "grpc" not in c["livenessProbe"], "liveness must not follow downstream health"
    (codec,) = containers(defaults.get("Deployment", name("codec")))
    assert codec["startupProbe"]["grpc"]["port"] == 50052
    assert codec["startupProbe"]["failureThreshold"] * codec["startupProbe"]["periodSeconds"] >= 120


def test_triton_gpu_shm_and_probes(defaults) -> None:
    dep = defaults.get("Deployment", name("triton"))
    spec = dep["spec"]["template"]["spec"]
    (c,) = spec["containers"]
    assert c["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
    volumes = {v["name"]: v for v in spec["volumes"]}
    assert volumes["dshm"]["emptyDir"]["medium"] == "Memory"
    assert {"name": "dshm", "mountPath": "/dev/shm"} in c["volumeMounts"]
    ready = "/v2/models/s2s_transformer/ready"
    assert c["startupProbe"]["httpGet"]["path"] == ready
    assert c["startupProbe"]["failureThreshold"] * c["startupProbe"]["periodSeconds"] >= 300
    assert c["readinessProbe"]["httpGet"]["path"] == ready
    assert c["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    assert env_of(c)["TS2S_S2S_DEVICE"]["value"] == "cuda"
    ports = {p["name"]: p["containerPort"] for p in c["ports"]}
    assert ports == {"http": 8000, "grpc": 8001, "metrics": 8002}
    mount = next(m for m in c["volumeMounts"] if m["name"] == "models")
    assert (mount["mountPath"], mount["subPath"], mount["readOnly"]) == ("/models/s2s", "s2s", True)


def test_gateway_drain_fits_in_termination_grace(chart, defaults) -> None:
    dep = defaults.get("Deployment", name("gateway"))
    spec = dep["spec"]["template"]["spec"]
    env = env_of(spec["containers"][0])
    drain = float(env["TS2S_GATEWAY_DRAIN_GRACE_S"]["value"])
    pre_stop = float(spec["containers"][0]["lifecycle"]["preStop"]["exec"]["command"][1])
    assert spec["terminationGracePeriodSeconds"] > drain + pre_stop
    with pytest.raises(helm.HelmError, match="terminationGracePeriodSeconds"):
        render_chart(chart, {"gateway": {"drainGraceSeconds": 60, "terminationGracePeriodSeconds": 60}})


def test_internal_services_are_headless_and_gateway_uses_round_robin_targets(defaults) -> None:
    targets = env_of(containers(defaults.get("Deployment", name("gateway")))[0])
    for component, port, var in (("codec", 50052, "CODEC"), ("context", 50053, "CONTEXT"), ("triton", 8001, "TRITON")):
        svc = defaults.get("Service", name(component))
        assert svc["spec"]["clusterIP"] == "None"
        assert targets[f"TS2S_GATEWAY_{var}_TARGET"]["value"] == (
            f"dns:///{name(component)}.speech.svc.cluster.local:{port}"
        )
    gw = defaults.get("Service", name("gateway"))
    assert gw["spec"]["type"] == "ClusterIP" and gw["spec"].get("clusterIP") != "None"
    assert [p["name"] for p in gw["spec"]["ports"]] == ["grpc"], "no metrics port on the public Service"


def test_service_ports_are_named_and_target_named_container_ports(defaults) -> None:
    by_component = {}
    for w in workloads(defaults):
        comp = w["metadata"]["labels"]["app.kubernetes.io/component"]
        by_component[comp] = {p["name"] for c in containers(w) for p in c["ports"]}
    for svc in defaults.all("Service"):
        comp = svc["spec"]["selector"]["app.kubernetes.io/component"]
        for port in svc["spec"]["ports"]:
            assert port["name"], svc["metadata"]["name"]
            assert port["targetPort"] in by_component[comp], (svc["metadata"]["name"], port)


def test_security_contexts(defaults) -> None:
    for w in workloads(defaults):
        pod = w["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["seccompProfile"]["type"] == "RuntimeDefault"
        assert pod["automountServiceAccountToken"] is False
        for c in pod["containers"]:
            sc = c["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False
            assert sc["capabilities"]["drop"] == ["ALL"]
            assert sc["readOnlyRootFilesystem"] is True, w["metadata"]["name"]


def test_redis_statefulset_aof_pvc_and_secret_only_password(defaults) -> None:
    sts = defaults.get("StatefulSet", name("redis"))
    (c,) = containers(sts)
    args = c["args"]
    assert args[args.index("--appendonly") + 1] == "yes"
    assert args[args.index("--appendfsync") + 1] == "everysec"
    (claim,) = sts["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "data"
    assert {"name": "data", "mountPath": "/data"} in c["volumeMounts"]
    secret = defaults.get("Secret", name("redis"))
    assert set(secret["data"]) == {"redis-password"}
    ctx = env_of(containers(defaults.get("Deployment", name("context")))[0])
    assert ctx["TS2S_CONTEXT_REDIS_URL"]["value"] == f"redis://{name('redis')}.speech.svc.cluster.local:6379/0"
    ref = ctx["TS2S_CONTEXT_REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"]
    assert ref == {"name": name("redis"), "key": "redis-password"}
    # No password ever appears as a literal env value.
    for w in workloads(defaults):
        for cont in containers(w):
            for e in cont.get("env", []):
                if "PASSWORD" in e["name"] or e["name"] == "REDISCLI_AUTH":
                    assert "value" not in e and "secretKeyRef" in e["valueFrom"], e


def test_external_redis(chart, rendered) -> None:
    r = rendered["external-redis"]
    assert not r.all("StatefulSet") and not r.all("Secret")
    assert not r.has("NetworkPolicy", name("redis"))
    ctx = env_of(containers(r.get("Deployment", name("context")))[0])
    assert ctx["TS2S_CONTEXT_REDIS_URL"]["value"] == "rediss://redis.example.internal:6380/0"
    assert ctx["TS2S_CONTEXT_REDIS_PASSWORD"]["valueFrom"]["secretKeyRef"] == {
        "name": "redis-auth", "key": "redis-password"}
    with pytest.raises(helm.HelmError, match="externalRedis.url"):
        render_chart(chart, {"redis": {"enabled": False}})


def test_gpu_off_requests_no_gpu(rendered) -> None:
    r = rendered["gpu-off"]
    assert "nvidia.com/gpu" not in yaml.safe_dump(r.docs)
    (c,) = containers(r.get("Deployment", name("triton")))
    assert env_of(c)["TS2S_S2S_DEVICE"]["value"] == "cpu"


def test_autoscaling(defaults, rendered) -> None:
    gw = defaults.get("HorizontalPodAutoscaler", name("gateway"))
    assert gw["apiVersion"] == "autoscaling/v2"
    assert gw["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    tr = defaults.get("HorizontalPodAutoscaler", name("triton"))
    (metric,) = tr["spec"]["metrics"]
    assert metric["type"] == "Pods" and metric["pods"]["metric"]["name"] == "triton_queue_avg_us"
    # With an HPA the Deployment leaves replicas to it.
    assert "replicas" not in defaults.get("Deployment", name("triton"))["spec"]
    off = rendered["autoscaling-off"]
    assert not off.all("HorizontalPodAutoscaler")
    assert off.get("Deployment", name("gateway"))["spec"]["replicas"] == 2
    extra = rendered["public-gpu-codec-baked"]
    gw_metrics = [m.get("pods", {}).get("metric", {}).get("name") for m in
                  extra.get("HorizontalPodAutoscaler", name("gateway"))["spec"]["metrics"]]
    assert "telugu_s2s_gateway_active_calls" in gw_metrics
    assert len(extra.get("HorizontalPodAutoscaler", name("triton"))["spec"]["metrics"]) == 2


def test_network_policies_expose_only_the_gateway(defaults) -> None:
    def selector(np):
        return np["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"]

    for component, client in (("codec", "gateway"), ("context", "gateway"), ("triton", "gateway"), ("redis", "context")):
        np = defaults.get("NetworkPolicy", name(component))
        assert selector(np) == component
        service_rule = np["spec"]["ingress"][0]
        (peer,) = service_rule["from"]
        assert peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == client
        assert peer["podSelector"]["matchLabels"]["app.kubernetes.io/instance"] == "demo"
        for rule in np["spec"]["ingress"]:
            assert rule.get("from"), "every internal rule names its peers"
    gw = defaults.get("NetworkPolicy", name("gateway"))
    grpc_rule = gw["spec"]["ingress"][0]
    assert grpc_rule["ports"] == [{"port": "grpc", "protocol": "TCP"}] and "from" not in grpc_rule


def test_monitoring_behind_flags_and_capabilities(chart, rendered) -> None:
    on = rendered["monitoring-on"]
    sm = on.get("ServiceMonitor", "demo-telugu-s2s")
    assert sm["spec"]["jobLabel"] == "app.kubernetes.io/component"
    assert sm["spec"]["endpoints"][0]["port"] == "metrics"
    selected = [s for s in on.all("Service")
                if all(s["metadata"]["labels"].get(k) == v for k, v in sm["spec"]["selector"]["matchLabels"].items())]
    assert sorted(s["metadata"]["labels"]["app.kubernetes.io/component"] for s in selected) == [
        "codec", "context", "gateway", "triton"]
    for s in selected:
        assert "metrics" in {p["name"] for p in s["spec"]["ports"]}
    rule = on.get("PrometheusRule", "demo-telugu-s2s")
    alerts = yaml.safe_load((ROOT / "deploy" / "prometheus" / "alerts.yml").read_text())
    assert rule["spec"]["groups"] == alerts["groups"]
    dash = on.get("ConfigMap", "demo-telugu-s2s-dashboard")
    assert dash["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert dash["data"]["telugu-s2s.json"].strip() == (ROOT / "deploy/grafana/telugu-s2s.json").read_text().strip()
    # Flags on, but the cluster has no prometheus-operator CRDs: nothing rendered, a note instead.
    no_crd = render_chart(chart, VALUE_SETS["monitoring-on"][0])
    assert not no_crd.all("ServiceMonitor") and not no_crd.all("PrometheusRule")
    assert "no ServiceMonitor CRD" in no_crd.notes
    # Capabilities present, flags off (the default): nothing either.
    caps_only = render_chart(chart, {}, MONITORING_APIS)
    assert not caps_only.all("ServiceMonitor") and not caps_only.all("PrometheusRule")


def test_public_gateway_ingress_and_baked_checkpoint(rendered) -> None:
    r = rendered["public-gpu-codec-baked"]
    svc = r.get("Service", name("gateway"))
    assert svc["spec"]["type"] == "LoadBalancer"
    ing = r.get("Ingress", name("gateway"))
    assert ing["metadata"]["annotations"]["nginx.ingress.kubernetes.io/backend-protocol"] == "GRPC"
    backend = ing["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": name("gateway"), "port": {"name": "grpc"}}
    triton = r.get("Deployment", name("triton"))["spec"]["template"]["spec"]
    assert "models" not in {v["name"] for v in triton["volumes"]}
    codec = r.get("Deployment", name("codec"))["spec"]["template"]["spec"]
    assert codec["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert {v["name"]: v for v in codec["volumes"]}["models"]["hostPath"]["path"] == "/mnt/models"


def test_notes_tell_how_to_call(defaults) -> None:
    notes = defaults.notes
    assert f"port-forward svc/{name('gateway')} 50051:50051" in notes
    assert "telugu_s2s.v1.Conversation/ListVoices" in notes


# --- values the chart refuses -------------------------------------------------------------

BAD_VALUES = {
    "negative replicas": ({"codec": {"replicaCount": -1}}, "replicaCount"),
    "unknown default voice": ({"gateway": {"defaultVoice": "robot"}}, "defaultVoice"),
    "empty image repository": ({"triton": {"image": {"repository": ""}}}, "repository"),
    "missing image repository": ({"gateway": {"image": {"repository": None}}}, "repository"),
    "unknown top-level key": ({"gatway": {"replicaCount": 1}}, "gatway"),
    "password in the redis URL": ({"redis": {"enabled": False},
                                   "externalRedis": {"url": "redis://:secret@redis:6379/0"}}, "url"),
    "unknown codec device": ({"codec": {"device": "tpu"}}, "device"),
    "too many turns": ({"context": {"maxTurns": 11}}, "maxTurns"),
}


@pytest.mark.parametrize("case", list(BAD_VALUES))
def test_schema_rejects_bad_values(chart, case: str) -> None:
    values, key = BAD_VALUES[case]
    with pytest.raises(helm.HelmValuesError, match=key):
        chart.validate_schema(values)
    with pytest.raises(helm.HelmError):
        render_chart(chart, values)


def test_schema_accepts_the_documented_values(chart) -> None:
    for values, _ in VALUE_SETS.values():
        chart.validate_schema(values)


def test_gateway_turn_detection_default_is_a_value(chart, defaults) -> None:
    env = env_of(containers(defaults.get("Deployment", name("gateway")))[0])
    assert env["TS2S_GATEWAY_TURN_DETECTION"]["value"] == "turn_model"
    r = render_chart(chart, {"gateway": {"turnDetection": "silence"}})
    env = env_of(containers(r.get("Deployment", name("gateway")))[0])
    assert env["TS2S_GATEWAY_TURN_DETECTION"]["value"] == "silence"
    with pytest.raises(helm.HelmError):
        render_chart(chart, {"gateway": {"turnDetection": "push-to-talk"}})


def test_gateway_preempt_at_is_rendered_and_checked(chart, defaults) -> None:
    env = env_of(containers(defaults.get("Deployment", name("gateway")))[0])
    assert float(env["TS2S_GATEWAY_PREEMPT_AT"]["value"]) == 0.5
    r = render_chart(chart, {"gateway": {"preemptAt": 0}})
    env = env_of(containers(r.get("Deployment", name("gateway")))[0])
    assert float(env["TS2S_GATEWAY_PREEMPT_AT"]["value"]) == 0.0
    for bad in (1, -0.1, "soon"):
        with pytest.raises(helm.HelmError):
            render_chart(chart, {"gateway": {"preemptAt": bad}})
