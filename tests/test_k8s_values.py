"""values/*.yaml against the chart: its JSON schema, and what `helm template` renders from them.

Needs the chart, which CI does not have: MLFLOW_CHART=path to charts/mlflow (a copy whose
Chart.yaml dependencies may be dropped). The rendering checks also need helm on PATH.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from mlflow_acceptance.fixtures.k8s import commands
from mlflow_acceptance.fixtures.k8s.addons import gateway_front_door
from mlflow_acceptance.fixtures.k8s.chart import Release
from mlflow_acceptance.fixtures.k8s.release import VALUES_DIR, run_values, values_files

from tests.k8s_fakes import backends

CHART = os.environ.get("MLFLOW_CHART", "")
CHART_DIR = Path(CHART).expanduser() if CHART else None
needs_chart = pytest.mark.skipif(
    CHART_DIR is None or not (CHART_DIR / "values.schema.json").is_file(),
    reason="set MLFLOW_CHART to a checkout of community-charts charts/mlflow (1.11.5)",
)
needs_helm = pytest.mark.skipif(
    shutil.which("helm") is None or CHART_DIR is None or not CHART_DIR.is_dir(),
    reason="needs helm on PATH and MLFLOW_CHART set to the chart folder",
)
RELEASE = Release("mlflow", "mlflow")


def merge(base: Any, override: Any) -> Any:
    """Helm's coalescing: maps merge key by key, anything else (lists too) is replaced."""
    if isinstance(base, dict) and isinstance(override, dict):
        merged = dict(base)
        for key, value in override.items():
            merged[key] = merge(base.get(key), value) if key in base else value
        return merged
    return override


def layered(*paths: Path, extra: dict | None = None) -> dict:
    result: dict = {}
    for path in paths:
        result = merge(result, yaml.safe_load(path.read_text()) or {})
    return merge(result, extra or {})


def run_layer(layer: str) -> dict:
    """The last values layer a kind run writes (``kind-<store>``, or ``kind-gateway``: the
    fake-gcs store behind --edge gateway), as fixtures/targets/kind/target.py composes it."""
    gateway = gateway_front_door("gateway", "localhost") if layer == "kind-gateway" else None
    store = "fake-gcs" if gateway else layer.removeprefix("kind-")
    values = run_values(
        RELEASE,
        backends(store),
        image="mlflow-acceptance/mlflow:0123abcd",
        workers=2,
        extra_hosts=["127.0.0.1:*", *(gateway.allowed_hosts() if gateway else [])],
    )
    return {**values, **(gateway.chart_values() if gateway else {})}


KIND_LAYERS = ["kind-minio", "kind-fake-gcs", "kind-gateway"]


def layers() -> dict[str, dict]:
    kind_files = values_files("kind")
    return {
        "base": layered(values_files("kind")[0]),
        **{layer: layered(*kind_files, extra=run_layer(layer)) for layer in KIND_LAYERS},
        "gke": layered(*values_files("gke")),
    }


def test_the_ingress_retries_what_the_local_front_door_retries():
    """D5: ingress-nginx retries only "error timeout" by default; the local front door also
    retries 502/503, so chaos budgets calibrated there must hold behind the ingress too."""
    from mlflow_acceptance.fixtures.targets.local.stack import NGINX_TEMPLATE

    conf = NGINX_TEMPLATE.read_text()
    local = {
        line.split()[0]: line.strip().rstrip(";").split(None, 1)[1]
        for line in conf.splitlines()
        if line.strip().startswith("proxy_next_upstream")
    }
    annotations = layered(values_files("kind")[0])["ingress"]["annotations"]
    prefix = "nginx.ingress.kubernetes.io/"
    assert annotations[prefix + "proxy-next-upstream"] == local["proxy_next_upstream"]
    assert annotations[prefix + "proxy-next-upstream-tries"] == local["proxy_next_upstream_tries"]


def test_merge_follows_helm():
    assert merge({"a": {"b": 1, "c": [1]}}, {"a": {"c": [2]}}) == {"a": {"b": 1, "c": [2]}}


@needs_chart
@pytest.mark.parametrize("layer", ["base", *KIND_LAYERS, "gke"])
def test_values_validate_against_the_charts_schema(layer):
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    chart_defaults = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    jsonschema.validate(merge(chart_defaults, layers()[layer]), schema)


@needs_chart
@pytest.mark.parametrize("path", sorted(VALUES_DIR.glob("*.yaml")), ids=str)
def test_each_file_alone_validates(path):
    """Every file must be schema-valid on its own too: a typo in one layer is caught there."""
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    chart_defaults = yaml.safe_load((CHART_DIR / "values.yaml").read_text())
    jsonschema.validate(merge(chart_defaults, yaml.safe_load(path.read_text())), schema)


@needs_chart
def test_the_schema_rejects_the_key_that_does_not_exist():
    """Proves the validation can fail: the tempting targetCPUUtilizationPercentage is unknown."""
    schema = json.loads((CHART_DIR / "values.schema.json").read_text())
    bad = merge(layers()["base"], {"autoscaling": {"targetCPUUtilizationPercentage": 70}})
    with pytest.raises(jsonschema.ValidationError, match="targetCPUUtilizationPercentage"):
        jsonschema.validate(bad, schema)


def render(tmp_path: Path, layer: str) -> list[dict]:
    files = values_files("gke" if layer == "gke" else "kind")
    if layer.startswith("kind-"):
        last = tmp_path / f"{layer}.yaml"
        last.write_text(yaml.safe_dump(run_layer(layer)))
        files = [*files, last]
    command = commands.helm_template(
        "mlflow", commands.ChartSource(str(CHART_DIR)), "mlflow", files
    )
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


def by_kind(docs: list[dict], kind: str) -> dict:
    return next(doc for doc in docs if doc["kind"] == kind)


@needs_helm
@pytest.mark.parametrize("layer", [*KIND_LAYERS, "gke"])
def test_rendered_manifests_are_valid_kubernetes(tmp_path, layer):
    docs = render(tmp_path, layer)
    kinds = {d["kind"] for d in docs}
    assert kinds >= {"Deployment", "Service", "HorizontalPodAutoscaler"}
    assert ("Ingress" in kinds) == (layer != "kind-gateway")  # the Gateway routes instead
    for doc in docs:
        kubernetes_validate.validate(doc, "1.36.1", strict=True)


@needs_helm
@pytest.mark.parametrize(
    ("layer", "destination"),
    [
        ("kind-minio", "--artifacts-destination=s3://mlflow-artifacts/mlruns"),
        ("kind-fake-gcs", "--artifacts-destination=gs://mlflow-artifacts/mlruns"),
        ("gke", "--artifacts-destination=gs://mlflow-staging-artifacts/mlruns"),
    ],
)
def test_rendered_release_carries_what_the_seed_promises(tmp_path, layer, destination):
    docs = render(tmp_path, layer)
    deployment = by_kind(docs, "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    server = next(c for c in pod["containers"] if c["name"] == "mlflow")
    assert "--serve-artifacts" in server["args"]
    assert destination in server["args"]
    assert not any(a.startswith("--default-artifact-root") for a in server["args"])
    assert server["resources"] == {
        "requests": {"cpu": "200m", "memory": "512Mi"},
        "limits": {"cpu": "1000m", "memory": "2Gi"},
    }
    assert "replicas" not in deployment["spec"]  # the HPA owns the count
    env_from = [ref.get("secretRef", {}).get("name", "") for ref in server.get("envFrom", [])]
    assert any(name.endswith("-keys") for name in env_from), env_from  # shared server keys
    hpa = by_kind(docs, "HorizontalPodAutoscaler")
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (1, 2)
    assert hpa["spec"]["metrics"] == [
        {
            "type": "Resource",
            "resource": {
                "name": "cpu",
                "target": {"type": "Utilization", "averageUtilization": 70},
            },
        }
    ]
    assert hpa["spec"]["scaleTargetRef"]["name"] == deployment["metadata"]["name"]
    ingress = by_kind(docs, "Ingress")
    host = ingress["spec"]["rules"][0]["host"]
    assert ingress["spec"]["tls"] == [{"hosts": [host], "secretName": "mlflow-tls"}]
    annotations = ingress["metadata"]["annotations"]
    assert annotations["cert-manager.io/cluster-issuer"]
    assert annotations["nginx.ingress.kubernetes.io/proxy-body-size"] == "0"
    assert annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"] == "600"
    migration = next(c for c in pod["initContainers"] if c["name"] == "mlflow-db-migration")
    assert migration["image"] == server["image"]
    for container in (server, migration):
        env = {e["name"]: e for e in container["env"]}
        for name in ("MYSQL_USERNAME", "MYSQL_PWD"):
            assert "secretKeyRef" in env[name]["valueFrom"], (container["name"], name)
    allowed = next(
        d
        for d in docs
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("env-configmap")
    )
    hosts = allowed["data"]["MLFLOW_SERVER_ALLOWED_HOSTS"].split(",")
    assert host in hosts
    assert "mlflow.mlflow.svc.cluster.local" in hosts


@needs_helm
def test_kind_release_wires_the_stand_ins(tmp_path):
    minio = by_kind(render(tmp_path, "kind-minio"), "Deployment")["spec"]["template"]["spec"]
    env = {
        e["name"]: e for e in next(c for c in minio["containers"] if c["name"] == "mlflow")["env"]
    }
    assert env["MLFLOW_S3_ENDPOINT_URL"]["value"] == "http://mlflow-acc-r1-minio:9000"
    assert env["AWS_SECRET_ACCESS_KEY"]["valueFrom"]["secretKeyRef"] == {
        "name": "mlflow-s3",
        "key": "AWS_SECRET_ACCESS_KEY",
    }
    gcs = by_kind(render(tmp_path, "kind-fake-gcs"), "Deployment")["spec"]["template"]["spec"]
    env = {e["name"]: e for e in next(c for c in gcs["containers"] if c["name"] == "mlflow")["env"]}
    assert env["STORAGE_EMULATOR_HOST"]["value"] == "http://mlflow-acc-r1-fake-gcs:4443"
    assert "AWS_ACCESS_KEY_ID" not in env


@needs_helm
def test_gke_release_uses_workload_identity_and_no_key(tmp_path):
    docs = render(tmp_path, "gke")
    account = by_kind(docs, "ServiceAccount")
    assert account["metadata"]["annotations"]["iam.gke.io/gcp-service-account"].endswith(
        ".iam.gserviceaccount.com"
    )
    pod = by_kind(docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == account["metadata"]["name"]
    names = {e["name"] for c in pod["containers"] for e in c.get("env", [])}
    assert "GOOGLE_APPLICATION_CREDENTIALS" not in names


@needs_helm
def test_behind_the_gateway_the_release_still_allows_its_host_and_origin(tmp_path):
    """With the Ingress off the chart derives neither: without the run's values MLflow
    would answer 403 to every request through the Gateway."""
    docs = render(tmp_path, "kind-gateway")
    config = next(
        d
        for d in docs
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("env-configmap")
    )
    assert "localhost" in config["data"]["MLFLOW_SERVER_ALLOWED_HOSTS"].split(",")
    assert config["data"]["MLFLOW_SERVER_CORS_ALLOWED_ORIGINS"].split(",") == ["https://localhost"]
    service = by_kind(docs, "Service")
    assert service["metadata"]["name"] == "mlflow"  # what the HTTPRoute's backendRef names
    assert {p["port"] for p in service["spec"]["ports"]} == {80}
