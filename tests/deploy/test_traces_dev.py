"""The dev overlay's Jaeger receives OTLP/gRPC from every traced process, as the stack's
processes reach the test collector (tests/stack/test_traces.py): Jaeger all-in-one with its
OTLP receiver on and port 4317 behind a Service; payplane-config pointing
OTEL_EXPORTER_OTLP_ENDPOINT at that Service and port in plain text; every Deployment that
reads payplane-config named for itself (OTEL_SERVICE_NAME) and admitted by Jaeger's
NetworkPolicy on that port.

Checked on the manifests as written (always) and on `kubectl kustomize`'s rendering (when
kubectl is installed)."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

from .yaml_subset import load_all

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
DEV = K8S / "overlays" / "dev"

Obj = dict[str, Any]


def _literals(kustomization: Path, generator: str) -> dict[str, str]:
    """The `literals` of the configMapGenerator entry named `generator`."""
    (doc,) = load_all(kustomization.read_text())
    for entry in doc.get("configMapGenerator") or []:
        if entry["name"] == generator:
            return dict(str(item).split("=", 1) for item in entry.get("literals") or [])
    return {}


def dev_from_sources() -> list[Obj]:
    """The dev overlay's objects from its files: base and dev resources, payplane-config with
    the dev literals merged over the base's (what `behavior: merge` does)."""
    objects: list[Obj] = []
    for layer in (K8S / "base", DEV):
        (kustomization,) = load_all((layer / "kustomization.yaml").read_text())
        for ref in kustomization.get("resources") or []:
            if ref.endswith(".yaml"):
                objects += load_all((layer / ref).read_text())
    data = {**_literals(K8S / "base" / "kustomization.yaml", "payplane-config")}
    data.update(_literals(DEV / "kustomization.yaml", "payplane-config"))
    objects.append({"kind": "ConfigMap", "metadata": {"name": "payplane-config"}, "data": data})
    return objects


def dev_rendered() -> list[Obj]:
    result = subprocess.run(
        ["kubectl", "kustomize", str(DEV)], capture_output=True, text=True, timeout=60, check=True
    )
    return load_all(result.stdout)


def _named(objects: list[Obj], kind: str, name: str) -> Obj:
    found = [o for o in objects if o["kind"] == kind and o["metadata"]["name"] == name]
    assert len(found) == 1, f"{len(found)} {kind} named {name}"
    return found[0]


def _matches(selector: dict[str, str] | None, labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in (selector or {}).items())


def _pod_labels(deployment: Obj) -> dict[str, str]:
    return {k: str(v) for k, v in deployment["spec"]["template"]["metadata"]["labels"].items()}


def _containers(deployment: Obj) -> list[Obj]:
    return list(deployment["spec"]["template"]["spec"]["containers"])


def _env(container: Obj) -> dict[str, str]:
    return {e["name"]: str(e.get("value", "")) for e in container.get("env") or []}


def _reads_config(container: Obj) -> bool:
    refs = [e.get("configMapRef", {}).get("name", "") for e in container.get("envFrom") or []]
    return any(r.startswith("payplane-config") for r in refs)


def _admits(policy: Obj, labels: dict[str, str], port: int) -> bool:
    """Whether `policy`'s ingress lets a pod with `labels` (same namespace) reach `port`."""
    for rule in policy["spec"].get("ingress") or []:
        ports = [p.get("port") for p in rule.get("ports") or []]
        if ports and port not in ports:
            continue
        sources = rule.get("from")
        if not sources:
            return True  # from anywhere
        for source in sources:
            if "podSelector" in source and "namespaceSelector" not in source:
                if _matches(source["podSelector"].get("matchLabels"), labels):
                    return True
    return False


def assert_traces_reach_jaeger(objects: list[Obj]) -> None:
    config = next(
        o for o in objects
        if o["kind"] == "ConfigMap" and o["metadata"]["name"].startswith("payplane-config")
    )  # fmt: skip
    endpoint = urlparse(config["data"]["OTEL_EXPORTER_OTLP_ENDPOINT"])
    # Plain-text gRPC inside the namespace: the exporter must not try TLS.
    assert endpoint.scheme == "http", endpoint
    assert str(config["data"].get("OTEL_EXPORTER_OTLP_INSECURE")).lower() == "true"
    assert endpoint.hostname and endpoint.port == 4317, endpoint

    service = _named(objects, "Service", endpoint.hostname)
    (port,) = [p for p in service["spec"]["ports"] if p["port"] == endpoint.port]
    backends = [
        o for o in objects
        if o["kind"] == "Deployment" and _matches(service["spec"]["selector"], _pod_labels(o))
    ]  # fmt: skip
    assert [b["metadata"]["name"] for b in backends] == ["jaeger"]
    (jaeger,) = _containers(backends[0])
    assert "jaegertracing/all-in-one" in jaeger["image"]
    assert _env(jaeger).get("COLLECTOR_OTLP_ENABLED") == "true"  # the OTLP receiver on
    target = port.get("targetPort", port["port"])
    (listening,) = [p for p in jaeger["ports"] if target in (p.get("name"), p["containerPort"])]
    assert listening["containerPort"] == 4317

    policies = [
        o for o in objects
        if o["kind"] == "NetworkPolicy"
        and _matches(o["spec"]["podSelector"].get("matchLabels"), _pod_labels(backends[0]))
    ]  # fmt: skip
    assert policies, "no NetworkPolicy admits anything to Jaeger (the namespace denies by default)"
    exporters = [
        o for o in objects
        if o["kind"] == "Deployment" and any(_reads_config(c) for c in _containers(o))
    ]  # fmt: skip
    assert {o["metadata"]["name"] for o in exporters} >= {"checkout", "ledger", "console"}
    for deployment in exporters:
        name = deployment["metadata"]["name"]
        labels = _pod_labels(deployment)
        assert any(_admits(p, labels, 4317) for p in policies), (
            f"{name}'s pods ({labels}) may not reach Jaeger's OTLP port: its spans are dropped"
        )
        for container in _containers(deployment):
            command = " ".join(str(part) for part in container.get("command") or [])
            module = re.search(r"python -m (\w+)", command)
            if _reads_config(container) and module:
                assert _env(container).get("OTEL_SERVICE_NAME") == module.group(1), name


def test_every_traced_process_reaches_jaeger_over_otlp() -> None:
    assert_traces_reach_jaeger(dev_from_sources())


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_every_traced_process_reaches_jaeger_over_otlp_as_rendered() -> None:
    assert_traces_reach_jaeger(dev_rendered())


def test_the_subset_reader_reads_what_the_manifests_use() -> None:
    text = """# a comment
a: 1
b: "two"  # trailing
n: {}
c:
- x
- k: v
  l: [1, 2,
      3]
d:
  e: |
    line one
    line two
  f: a long
    folded value
"""
    assert load_all(text + "---\nz: 0\n") == [
        {
            "a": 1,
            "b": "two",
            "n": {},
            "c": ["x", {"k": "v", "l": [1, 2, 3]}],
            "d": {"e": "line one\nline two", "f": "a long folded value"},
        },
        {"z": 0},
    ]
