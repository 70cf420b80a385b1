"""The exact helm, kubectl and kind command lines the Kubernetes layer runs, per option set."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from mlflow_acceptance.fixtures.core.errors import TargetError
from mlflow_acceptance.fixtures.k8s import addons, commands
from mlflow_acceptance.fixtures.k8s.addons import (
    EDGES,
    EXTERNAL_SECRETS_ADDON,
    addon_commands,
    addons_for,
    install_addons,
    issuer_manifests,
)
from mlflow_acceptance.fixtures.k8s.chart import Release
from mlflow_acceptance.fixtures.k8s.release import run_values

from tests.k8s_fakes import FakeKube, backends, release_routes

KIND = commands.KubeContext(Path("/tmp/kc"), "kind-mlflow-acc")


def test_release_install_with_layered_values_on_kind():
    files = [Path("values/base.yaml"), Path("values/kind.yaml"), Path("r/values-run.yaml")]
    assert commands.helm_upgrade_install(
        "mlflow", commands.chart_source(None), "mlflow", files, KIND
    ) == [
        "helm", "upgrade", "--install", "mlflow", "mlflow",
        "--repo", "https://community-charts.github.io/helm-charts", "--version", "1.11.5",
        "--namespace", "mlflow", "--create-namespace",
        "--values", "values/base.yaml", "--values", "values/kind.yaml",
        "--values", "r/values-run.yaml",
        "--wait", "--timeout", "15m",
        "--kubeconfig", "/tmp/kc", "--kube-context", "kind-mlflow-acc",
    ]  # fmt: skip


def test_chart_source_forms(tmp_path):
    local = tmp_path / "mlflow"
    local.mkdir()
    assert commands.chart_source(str(local)).args() == [str(local)]
    assert commands.chart_source("community-charts/mlflow").args() == [
        "community-charts/mlflow", "--version", "1.11.5"
    ]  # fmt: skip
    assert commands.chart_source(None).args()[:3] == [
        "mlflow",
        "--repo",
        "https://community-charts.github.io/helm-charts",
    ]


def test_existing_cluster_commands_use_the_given_context_and_default_kubeconfig():
    gke = commands.KubeContext(None, "gke_proj_europe-west1_staging")
    assert commands.helm_uninstall("mlflow-up", "mlflow", gke) == [
        "helm", "uninstall", "mlflow-up", "--namespace", "mlflow", "--ignore-not-found",
        "--wait", "--timeout", "5m", "--kube-context", "gke_proj_europe-west1_staging",
    ]  # fmt: skip
    assert commands.kubectl_apply(Path("i.yaml"), gke)[-2:] == [
        "--context", "gke_proj_europe-west1_staging"
    ]  # fmt: skip


def test_template_and_kind_commands():
    chart = commands.ChartSource("/charts/mlflow")
    assert commands.helm_template("mlflow", chart, "mlflow", [Path("v.yaml")]) == [
        "helm", "template", "mlflow", "/charts/mlflow", "--namespace", "mlflow",
        "--values", "v.yaml", "--kube-version", "1.36.1",
    ]  # fmt: skip
    assert commands.kind_create(Path("c.yaml"), Path("k")) == [
        "kind", "create", "cluster", "--config", "c.yaml", "--kubeconfig", "k"
    ]  # fmt: skip
    assert commands.kind_delete("mlflow-acc") == [
        "kind",
        "delete",
        "cluster",
        "--name",
        "mlflow-acc",
    ]
    assert commands.kubectl_apply(Path("i.yaml"), KIND) == [
        "kubectl", "apply", "--server-side", "--force-conflicts", "--field-manager",
        "mlflow-acceptance", "-f", "i.yaml",
        "--kubeconfig", "/tmp/kc", "--context", "kind-mlflow-acc",
    ]  # fmt: skip


def test_addons_are_pinned_and_configured_for_kind(tmp_path):
    cmds = addon_commands(tmp_path, KIND, addons_for("ingress-nginx"))
    pinned = [
        (c[3], c[4], c[c.index("--version") + 1], c[c.index("--namespace") + 1]) for c in cmds
    ]
    assert pinned == [
        ("metrics-server", "metrics-server", "3.13.1", "kube-system"),
        ("ingress-nginx", "ingress-nginx", "4.15.1", "ingress-nginx"),
        ("cert-manager", "cert-manager", "v1.21.1", "cert-manager"),
        ("external-secrets", "external-secrets", "2.9.0", "external-secrets"),
    ]
    values = {c[3]: yaml.safe_load(Path(c[c.index("--values") + 1]).read_text()) for c in cmds}
    assert values["metrics-server"]["args"] == ["--kubelet-insecure-tls"]
    assert values["cert-manager"] == {"crds": {"enabled": True}}
    controller = values["ingress-nginx"]["controller"]
    assert controller["nodeSelector"]["ingress-ready"] == "true"
    assert controller["hostPort"] == {"enabled": True}
    assert controller["service"]["type"] != "LoadBalancer"  # helm --wait would hang on kind
    assert all("--wait" in c and "--kube-context" in c for c in cmds)


def test_traefik_edge_keeps_the_reference_edges_promises(tmp_path):
    """What values/base.yaml asks of ingress-nginx by annotation, Traefik must do by config."""
    cmds = addon_commands(tmp_path, KIND, addons_for("traefik"))
    assert [c[3] for c in cmds] == [
        "metrics-server", "traefik", "cert-manager", "external-secrets"
    ]  # fmt: skip
    traefik = cmds[1]
    assert traefik[4:9] == ["traefik", "--repo", "https://traefik.github.io/charts", "--version",
                            "39.0.7"]  # fmt: skip
    values = yaml.safe_load(Path(traefik[traefik.index("--values") + 1]).read_text())
    web, websecure = values["ports"]["web"], values["ports"]["websecure"]
    assert (web["hostPort"], websecure["hostPort"]) == (80, 443)
    assert web["http"]["redirections"]["entryPoint"]["to"] == "websecure"
    assert values["tlsOptions"]["default"]["minVersion"] == "VersionTLS12"
    assert websecure["transport"]["respondingTimeouts"]["readTimeout"] == "600s"
    middlewares = {
        m["metadata"]["name"]: m["spec"]
        for m in values["extraObjects"]
        if m["kind"] == "Middleware"
    }
    assert middlewares["hsts"]["headers"]["stsSeconds"] >= 15724800
    assert middlewares["retry"]["retry"]["attempts"] >= 2
    names = {f"traefik-{name}@kubernetescrd" for name in middlewares}
    assert set(websecure["http"]["middlewares"]) == names
    assert values["nodeSelector"]["ingress-ready"] == "true"
    # the MLflow Ingress keeps class nginx: Traefik's Ingress NGINX provider serves it
    nginx = values["providers"]["kubernetesIngressNginx"]
    assert nginx["enabled"]
    assert nginx["ingressClass"] == "nginx"
    classes = [o for o in values["extraObjects"] if o["kind"] == "IngressClass"]
    assert [c["spec"]["controller"] for c in classes] == ["k8s.io/ingress-nginx"]
    # nothing calls out of the machine
    assert values["global"] == {"checkNewVersion": False, "sendAnonymousUsage": False}
    assert EDGES["traefik"].namespace == "traefik"


def test_addons_take_local_charts_and_an_image_layer(tmp_path):
    chart = tmp_path / "charts" / "metrics-server"
    chart.mkdir(parents=True)
    image = {"image": {"repository": "mlflow-acceptance/kind-component", "tag": "abc"}}
    cmds = addon_commands(
        tmp_path, KIND, addons_for("traefik"), {"metrics-server": chart},
        {"metrics-server": image},
    )  # fmt: skip
    metrics = cmds[0]
    assert metrics[4] == str(chart)
    assert "--repo" not in metrics
    assert "--version" not in metrics
    files = [Path(metrics[i + 1]) for i, arg in enumerate(metrics) if arg == "--values"]
    assert [yaml.safe_load(f.read_text()) for f in files][-1] == image  # the layer wins
    assert "--repo" in cmds[1]  # the others still come from their repositories


def test_ca_issuer_chain_follows_cert_manager_bootstrap():
    selfsigned, ca_cert, ca_issuer = issuer_manifests()
    assert selfsigned["spec"] == {"selfSigned": {}}
    assert ca_cert["metadata"]["namespace"] == "cert-manager"  # where a ClusterIssuer looks
    assert ca_cert["spec"]["isCA"] is True
    assert ca_cert["spec"]["issuerRef"]["name"] == selfsigned["metadata"]["name"]
    assert ca_issuer["spec"]["ca"]["secretName"] == ca_cert["spec"]["secretName"]
    assert ca_issuer["metadata"]["name"] == "mlflow-acc-ca"


def test_run_values_for_minio_use_s3_and_a_secret():
    values = run_values(
        Release("mlflow", "acc"),
        backends("minio"),
        image="mlflow-acceptance/mlflow:0123abcd",
        workers=2,
        extra_hosts=["127.0.0.1:*"],
    )
    s3 = values["artifactRoot"]["s3"]
    assert values["artifactRoot"]["gcs"] == {"enabled": False}
    assert (s3["enabled"], s3["bucket"], s3["existingSecret"]["name"]) == (
        True,
        "mlflow-artifacts",
        "mlflow-s3",
    )
    assert values["extraEnvVars"]["MLFLOW_S3_ENDPOINT_URL"] == "http://mlflow-acc-r1-minio:9000"
    assert "AWS_SECRET_ACCESS_KEY" not in values["extraEnvVars"]  # only in the Secret
    assert values["backendStore"]["existingDatabaseSecret"]["name"] == "mlflow-db"
    assert "pw-123456" not in yaml.safe_dump(values)
    assert values["serverAllowedHosts"][-1] == "127.0.0.1:*"
    assert "mlflow.acc.svc.cluster.local" in values["serverAllowedHosts"]
    assert values["image"] == {
        "repository": "mlflow-acceptance/mlflow",
        "tag": "0123abcd",
        "pullPolicy": "IfNotPresent",  # loaded into the nodes with kind load: nothing to pull
    }
    assert values["initImages"]["mlflowDbMigration"] == values["image"]


def test_run_values_for_fake_gcs_use_gs_and_the_emulator():
    values = run_values(
        Release("mlflow", "mlflow"),
        backends("fake-gcs"),
        image="mlflow-acceptance/mlflow:0123abcd",
        workers=2,
        extra_hosts=[],
    )
    assert values["artifactRoot"]["gcs"] == {
        "enabled": True,
        "bucket": "mlflow-artifacts",
        "path": "mlruns",
    }
    assert values["artifactRoot"]["s3"] == {"enabled": False}
    assert values["extraEnvVars"]["STORAGE_EMULATOR_HOST"] == "http://mlflow-acc-r1-fake-gcs:4443"


def test_an_add_on_that_never_gets_ready_is_reported_with_its_pods_logs_and_events(
    tmp_path, monkeypatch
):
    """helm --wait says only "Deployment ... not ready": the failure must say why without a
    rerun (seen on kind: External Secrets' three Deployments 0/1 after 10 minutes)."""

    def helm_times_out(command, timeout, what):
        raise TargetError(f"{what}: `helm upgrade --install …` exited 1\ncontext deadline exceeded")

    monkeypatch.setattr(addons, "run", helm_times_out)
    fake = FakeKube(release_routes(namespace=EXTERNAL_SECRETS_ADDON.namespace))
    with pytest.raises(TargetError) as caught:
        install_addons(fake, KIND, tmp_path, lambda line: None, (EXTERNAL_SECRETS_ADDON,))
    message = str(caught.value)
    assert message.startswith("installing external-secrets: `helm upgrade --install …` exited 1")
    assert "mlflow: CrashLoopBackOff" in message  # the pods' state, not only helm's words
    folder = tmp_path / "external-secrets-failed"
    assert f"logs, events and state: {folder}" in message
    written = {path.name for path in folder.iterdir()}
    assert {"events.txt", "state.txt"} <= written
    assert any(name.startswith("describe-pod-") for name in written), written
    assert ("/api/v1/namespaces/external-secrets/pods", {"labelSelector": ""}) in fake.gets
