"""Shared fixtures for the deployment tests: the chart, a renderer, the Kubernetes validator.

The chart is rendered with the real Helm engine (helm-python-sdk embeds Helm's Go library);
manifests are checked against the Kubernetes OpenAPI schemas shipped by kubernetes-validate.
Nothing here needs a cluster, Docker, or the network.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

helm = pytest.importorskip("helm_python", reason="pip install 'telugu-s2s[dev]' (helm-python-sdk)")
kubernetes_validate = pytest.importorskip("kubernetes_validate", reason="pip install 'telugu-s2s[dev]'")

ROOT = Path(__file__).resolve().parents[3]
CHART_DIR = ROOT / "deploy" / "helm" / "telugu-s2s"
RELEASE = "demo"
NAMESPACE = "speech"
# The chart's kubeVersion floor (gRPC probes GA) and a current release.
KUBE_VERSIONS = ("1.27", "1.33")
MONITORING_APIS = ("monitoring.coreos.com/v1", "monitoring.coreos.com/v1/ServiceMonitor",
                   "monitoring.coreos.com/v1/PrometheusRule")


class Rendered:
    """One rendering of the chart: manifests as dicts, with lookups by kind and name."""

    def __init__(self, files: dict[str, str]) -> None:
        self.files = files
        self.docs: list[dict[str, Any]] = []
        for path, text in sorted(files.items()):
            if not path.endswith((".yaml", ".yml")):
                continue
            for doc in yaml.safe_load_all(text):
                if doc:
                    self.docs.append(doc)

    @property
    def notes(self) -> str:
        return next((t for p, t in self.files.items() if p.endswith("NOTES.txt")), "")

    def kinds(self) -> list[tuple[str, str]]:
        return sorted((d["kind"], d["metadata"]["name"]) for d in self.docs)

    def all(self, kind: str) -> list[dict[str, Any]]:
        return [d for d in self.docs if d["kind"] == kind]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        for d in self.docs:
            if d["kind"] == kind and d["metadata"]["name"] == name:
                return d
        raise KeyError(f"no {kind}/{name}; have {self.kinds()}")

    def has(self, kind: str, name: str) -> bool:
        return any(d["kind"] == kind and d["metadata"]["name"] == name for d in self.docs)


def render_chart(chart: Any, values: dict[str, Any] | None = None,
                 api_versions: tuple[str, ...] = ()) -> Rendered:
    """Render offline like `helm template --api-versions ...`.

    `Chart.render` has no api_versions keyword in helm-python-sdk 0.2.2, while the native
    `helm_render` call accepts it in its options JSON (as `helm template --api-versions` does);
    without extra API versions the public method is used.
    """
    if not api_versions:
        return Rendered(chart.render(values=values, name=RELEASE, namespace=NAMESPACE))
    from helm_python import _native

    opts = {"name": RELEASE, "namespace": NAMESPACE, "api_versions": list(api_versions)}
    raw = _native.call_string("helm_render", chart._raw(), json.dumps(values or {}), json.dumps(opts))
    return Rendered(json.loads(raw))


def validate_strict(doc: dict[str, Any], version: str) -> None:
    """Strict Kubernetes schema validation (unknown fields are errors)."""
    kubernetes_validate.validate(doc, version, strict=True)


def name(component: str) -> str:
    return f"{RELEASE}-telugu-s2s-{component}"


@pytest.fixture(scope="session")
def chart():
    c = helm.Chart.load(str(CHART_DIR))
    yield c
    c.close()


@pytest.fixture(scope="session")
def defaults(chart) -> Rendered:
    return render_chart(chart)
