"""deploy/k8s without a cluster: every file a kustomization names exists, every manifest is a
named Kubernetes object, no Secret is written down outside the dev overlay, the ports agree
with the local stack's, and (when kubectl is installed) every kustomization renders.

PyYAML is not a dependency, so the checks read the few structures they need line by line.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from stack.config import CONSOLE_PORT, SERVICES

K8S = Path(__file__).resolve().parents[2] / "deploy" / "k8s"
KUSTOMIZATIONS = sorted(K8S.rglob("kustomization.yaml"))
MANIFESTS = sorted(
    p for p in K8S.rglob("*.yaml") if p.name != "kustomization.yaml" and p.parent != K8S
)


def referenced(kustomization: Path) -> list[str]:
    """Paths under resources/components (list items) and patches (`path:`) and generators'
    `files:`/`envs:` entries."""
    refs: list[str] = []
    section = ""
    for line in kustomization.read_text().splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        top = re.match(r"^([A-Za-z]+):", line)
        if top:
            section = top.group(1)
            continue
        item = re.match(r"^\s*-\s+(?:path:\s*)?([^\s#:]+)\s*(?:#.*)?$", line)
        path = re.match(r"^\s*-?\s*path:\s*(\S+)", line)
        if section in ("resources", "components") and item:
            refs.append(item.group(1))
        elif section == "patches" and path:
            refs.append(path.group(1))
        elif section.endswith("Generator") and re.match(r"^\s+-\s+\S+\.(env|properties|txt)", line):
            refs.append(line.split("-", 1)[1].strip().split("=")[-1])
    return refs


def documents(path: Path) -> list[str]:
    return [d for d in re.split(r"^---\s*$", path.read_text(), flags=re.M) if d.strip()]


def test_there_is_a_base_and_two_overlays() -> None:
    assert {p.parent.relative_to(K8S).as_posix() for p in KUSTOMIZATIONS} == {
        "base",
        "overlays/dev",
        "overlays/prod",
    }


@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS, ids=lambda p: str(p.parent.name))
def test_every_referenced_file_exists(kustomization: Path) -> None:
    refs = referenced(kustomization)
    assert refs, f"{kustomization} references nothing"
    for ref in refs:
        target = (kustomization.parent / ref).resolve()
        assert target.exists(), f"{kustomization}: {ref} does not exist"
        if target.is_dir():
            assert (target / "kustomization.yaml").is_file(), f"{ref} is no kustomization"


def test_every_manifest_is_referenced_somewhere() -> None:
    used = {
        (k.parent / ref).resolve()
        for k in KUSTOMIZATIONS
        for ref in referenced(k)
        if (k.parent / ref).suffix == ".yaml"
    }
    assert [p for p in MANIFESTS if p.resolve() not in used] == []


@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_document_is_a_named_object(manifest: Path) -> None:
    assert "\t" not in manifest.read_text(), "tabs are not YAML indentation"
    for doc in documents(manifest):
        if re.search(r"^- op:", doc, flags=re.M):
            continue  # a JSON 6902 patch
        assert re.search(r"^apiVersion: \S+", doc, flags=re.M), doc
        assert re.search(r"^kind: [A-Z]\w+", doc, flags=re.M), doc
        assert re.search(r"^metadata:\n(?:  .*\n)*?  name: [a-z0-9-]+", doc, flags=re.M), doc


def test_no_secret_is_written_down_outside_dev() -> None:
    for path in [*MANIFESTS, *KUSTOMIZATIONS]:
        if "dev" in path.relative_to(K8S).parts:
            continue
        text = path.read_text()
        assert not re.search(r"^kind: Secret", text, flags=re.M), path
        assert "secretGenerator" not in text, path
        assert not re.search(r"sk_(live|test)_|whsec_", text), path


def test_base_services_match_the_local_stack() -> None:
    """Each runnable service has a base manifest with the stack's ports and gRPC probes."""
    base = (K8S / "base" / "kustomization.yaml").read_text()
    for spec in (s for s in SERVICES if s.available()):
        manifest = K8S / "base" / f"{spec.name}.yaml"
        assert f"- {manifest.name}" in base, f"{spec.name} is not in the base"
        text = manifest.read_text()
        assert f'command: ["python", "-m", "{spec.name}"]' in text
        assert f"containerPort: {spec.grpc_port.default}" in text
        for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
            assert re.search(rf"{probe}:\n\s+grpc:\n\s+port: {spec.grpc_port.default}", text), (
                f"{spec.name}: {probe} is not a gRPC probe on {spec.grpc_port.default}"
            )
        if spec.webhook_port is not None:
            assert f"containerPort: {spec.webhook_port.default}" in text
        for kind in ("Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy"):
            assert f"kind: {kind}" in text, f"{spec.name} lacks a {kind}"
        assert "resources:" in text and "limits:" in text


def test_the_console_is_in_the_base_and_both_overlays() -> None:
    """The console: the stack's port, HTTP probes, its Secret, a client of the services."""
    assert "- console.yaml" in (K8S / "base" / "kustomization.yaml").read_text()
    text = (K8S / "base" / "console.yaml").read_text()
    assert 'command: ["python", "-m", "console"]' in text
    assert f"containerPort: {CONSOLE_PORT.default}" in text
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert re.search(rf"{probe}:\n\s+httpGet:\n\s+path: /healthz", text), probe
    for key in ("credentials", "users", "session-secret"):
        assert re.search(rf"name: payplane-console\n\s+key: {key}", text), key
    assert 'payplane.io/client: "true"' in text  # the services' policies admit it
    for kind in ("Deployment", "Service", "PodDisruptionBudget", "NetworkPolicy"):
        assert f"kind: {kind}" in text, f"the console lacks a {kind}"
    dev = (K8S / "overlays" / "dev" / "kustomization.yaml").read_text()
    assert "name: payplane-console" in dev and "reviewer=dev-reviewer-token" in dev
    prod = (K8S / "overlays" / "prod" / "kustomization.yaml").read_text()
    assert re.search(r"- name: console\n\s+count: \d+", prod)
    assert "CONSOLE_COOKIE_SECURE=true" in prod


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
@pytest.mark.parametrize("kustomization", KUSTOMIZATIONS, ids=lambda p: str(p.parent.name))
def test_renders_with_kubectl(kustomization: Path) -> None:
    result = subprocess.run(
        ["kubectl", "kustomize", str(kustomization.parent)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "kind: Deployment" in result.stdout
