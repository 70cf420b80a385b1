"""Every bad input of the Kubernetes targets fails fast with one clear line, and none hangs."""

from __future__ import annotations

import socket
import threading
import time
from pathlib import Path

import pytest
from mlflow_acceptance.fixtures.core.errors import SetupError
from mlflow_acceptance.fixtures.k8s import prereqs, shell
from mlflow_acceptance.fixtures.k8s.commands import check_chart
from mlflow_acceptance.fixtures.k8s.front_door import from_ingress
from mlflow_acceptance.fixtures.registry import options_for
from mlflow_acceptance.fixtures.targets.cluster.target import ClusterTarget
from mlflow_acceptance.fixtures.targets.kind.target import KindTarget

from tests.k8s_fakes import load

ALL_TOOLS = {
    "docker": "/usr/bin/docker",
    "kind": "/usr/bin/kind",
    "kubectl": "/usr/bin/kubectl",
    "helm": "/usr/bin/helm",
}


def one_line(exc: SetupError) -> str:
    line = exc.line()
    assert "\n" not in line, line
    return line


def kubeconfig(tmp_path: Path, server: str, contexts=("kind-mlflow-acc", "staging")) -> Path:
    path = tmp_path / "kubeconfig"
    entries = "".join(
        f"- name: {name}\n  context: {{cluster: c, user: u, namespace: mlflow}}\n"
        for name in contexts
    )
    path.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters:\n- name: c\n  cluster: {{server: '{server}'}}\n"
        "users:\n- name: u\n  user: {token: tok-abcdef}\n"
        f"contexts:\n{entries}current-context: {contexts[0]}\n"
    )
    return path


@pytest.mark.parametrize("missing", ["kind", "docker", "kubectl", "helm"])
def test_a_missing_tool_is_named_with_how_to_install_it(monkeypatch, tmp_path, missing):
    monkeypatch.setattr(
        shell.shutil, "which", lambda name: None if name == missing else ALL_TOOLS[name]
    )
    with pytest.raises(SetupError) as failure:
        KindTarget(options_for("kind"), "r1", tmp_path).check()
    line = one_line(failure.value)
    assert line.startswith(f"{missing} is not on PATH: install ")


def test_no_docker_engine_fails_with_one_line(monkeypatch, tmp_path):
    monkeypatch.setattr(shell.shutil, "which", ALL_TOOLS.get)
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker.sock")
    started = time.monotonic()
    with pytest.raises(SetupError) as failure:
        KindTarget(options_for("kind"), "r1", tmp_path).check()
    assert one_line(failure.value).startswith("no Docker engine reachable")
    assert time.monotonic() - started < 30


def test_missing_values_file_fails_with_one_line(monkeypatch, tmp_path):
    from mlflow_acceptance.fixtures.k8s import release

    monkeypatch.setattr(shell.shutil, "which", ALL_TOOLS.get)
    monkeypatch.setattr(
        "mlflow_acceptance.fixtures.targets.kind.target.docker_client",
        lambda: type("D", (), {"close": lambda self: None})(),
    )
    (tmp_path / "values").mkdir()
    (tmp_path / "values" / "base.yaml").write_text("{}\n")
    monkeypatch.setattr(release, "VALUES_DIR", tmp_path / "values")
    with pytest.raises(SetupError) as failure:
        KindTarget(options_for("kind"), "r1", tmp_path).check()
    assert one_line(failure.value) == (
        f"values file {tmp_path}/values/kind.yaml: no such file: "
        "restore values/ from the repository"
    )


def test_kind_config_without_name_fails_with_one_line(monkeypatch, tmp_path):
    monkeypatch.setattr(shell.shutil, "which", ALL_TOOLS.get)
    monkeypatch.setattr(
        "mlflow_acceptance.fixtures.targets.kind.target.docker_client",
        lambda: type("D", (), {"close": lambda self: None})(),
    )
    config = tmp_path / "kind.yaml"
    config.write_text("kind: Cluster\napiVersion: kind.x-k8s.io/v1alpha4\n")
    with pytest.raises(SetupError) as failure:
        KindTarget(options_for("kind"), "r1", tmp_path, config=config).check()
    assert "has no top-level name:" in one_line(failure.value)


def test_missing_chart_path_fails_with_one_line(tmp_path):
    with pytest.raises(SetupError) as failure:
        check_chart(str(tmp_path / "nope"))
    assert "no such chart folder or archive" in one_line(failure.value)
    assert check_chart("community-charts/mlflow").ref == "community-charts/mlflow"


def test_unknown_context_lists_the_known_ones(tmp_path):
    config = kubeconfig(tmp_path, "https://127.0.0.1:1")
    target = ClusterTarget(
        options_for("gke", kube_context="prod"), "r1", tmp_path, kubeconfig=config
    )
    with pytest.raises(SetupError) as failure:
        target.check()
    assert one_line(failure.value) == (
        "kube context 'prod' is not in the kubeconfig (known: kind-mlflow-acc, staging): "
        "pass one of them as --kube-context"
    )


def test_unreadable_kubeconfig_fails_with_one_line(tmp_path):
    with pytest.raises(SetupError) as failure:
        prereqs.check_context(tmp_path / "absent", None)
    assert one_line(failure.value).startswith(f"no usable kubeconfig at {tmp_path / 'absent'}")


def test_refused_api_server_fails_fast(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    config = kubeconfig(tmp_path, f"http://127.0.0.1:{port}")
    target = ClusterTarget(
        options_for("gke", kube_context="staging"), "r1", tmp_path, kubeconfig=config
    )
    started = time.monotonic()
    with pytest.raises(SetupError) as failure:
        target.check()
    assert one_line(failure.value).startswith("the API server of staging failed (")
    assert time.monotonic() - started < prereqs.API_DEADLINE


def test_silent_api_server_does_not_hang(monkeypatch, tmp_path):
    """A server that accepts and never answers (a stuck proxy) ends at the deadline."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    held: list[socket.socket] = []
    accept = threading.Thread(target=lambda: held.append(listener.accept()[0]), daemon=True)
    accept.start()
    monkeypatch.setattr(prereqs, "API_DEADLINE", 2.0)
    config = kubeconfig(tmp_path, f"http://127.0.0.1:{listener.getsockname()[1]}")
    target = ClusterTarget(
        options_for("gke", kube_context="staging"), "r1", tmp_path, kubeconfig=config
    )
    started = time.monotonic()
    try:
        with pytest.raises(SetupError) as failure:
            target.check()
    finally:
        listener.close()
        for connection in held:
            connection.close()
    assert one_line(failure.value).startswith("the API server of staging did not answer within 2s")
    assert time.monotonic() - started < 10


def test_front_door_from_the_release_objects():
    assert from_ingress(load("ingress.json")).origin == "https://localhost"
    plain = {
        "metadata": {"name": "m", "namespace": "n"},
        "spec": {"rules": [{"host": "m.internal"}]},
    }
    assert from_ingress(plain).origin == "http://m.internal"
    assert from_ingress({"metadata": {"name": "m", "namespace": "n"}, "spec": {}}).origin is None


def started_cluster_target(tmp_path, routes, **options):
    from tests.k8s_fakes import FakeKube

    target = ClusterTarget(options_for("gke", **options), "r1", tmp_path)
    target.api, target.context = FakeKube(routes), "staging"
    target.observed = target._observe()
    return target.start()


def test_the_cluster_target_reads_the_ui_origin_and_redirect_entry_from_the_ingress(tmp_path):
    """Real-cluster trial: through a NodePort URL the CORS check judged the wrong origin,
    and the redirect check always skipped. Both come from the release's Ingress."""
    from tests.k8s_fakes import release_routes

    deployment = started_cluster_target(
        tmp_path, release_routes(), tracking_uri="http://10.0.0.5:30080"
    )
    assert deployment.tracking_uri == "http://10.0.0.5:30080"
    assert deployment.ui_origin == "https://localhost"  # what the chart allows for CORS
    assert deployment.http_url == "http://localhost"


def test_no_metrics_api_means_no_resource_sampler_and_says_why(tmp_path):
    """Real-cluster trial: without metrics-server every autoscaling test errored on a 404."""
    from mlflow_acceptance.fixtures.k8s.resources import METRICS_API

    from tests.k8s_fakes import release_routes

    routes = release_routes()
    deployment = started_cluster_target(tmp_path, routes)
    assert deployment.resources is None
    with pytest.raises(pytest.skip.Exception, match=r"metrics.k8s.io is not served"):
        deployment.require("resources", "replica CPU")
    routes[METRICS_API] = {"kind": "APIResourceList", "groupVersion": "metrics.k8s.io/v1beta1"}
    assert started_cluster_target(tmp_path, routes).resources is not None


def test_an_existing_release_says_its_workers_and_pool_from_the_pod_template(tmp_path):
    """The connection-budget check needs both; on gke the run did not render the values.
    The recorded chart Deployment runs `mlflow server` without --workers: MLflow's 4."""
    from tests.k8s_fakes import release_routes

    deployment = started_cluster_target(tmp_path, release_routes())
    assert (deployment.server_workers, deployment.server_db_pool) == (4, {})


class FakeNetwork:
    def __init__(self, containers: dict) -> None:
        self.attrs = {"Containers": containers}
        self.removed = False

    def reload(self) -> None:
        pass

    def remove(self) -> None:
        self.removed = True


@pytest.mark.parametrize(("attached", "removed"), [({}, True), ({"abc": {}}, False)])
def test_the_kind_network_goes_only_when_idle(monkeypatch, attached, removed):
    """kind never removes its network: a run removes it once nothing is attached, and
    leaves it to another cluster or stand-in still on it."""
    from types import SimpleNamespace

    from mlflow_acceptance.fixtures.targets.kind import kind_cluster

    network = FakeNetwork(attached)
    client = SimpleNamespace(networks=SimpleNamespace(get=lambda name: network))
    monkeypatch.setattr(kind_cluster, "docker_client", lambda: client)
    said = kind_cluster.remove_idle_kind_network()
    assert network.removed is removed
    assert said == (["Docker network kind (idle)"] if removed else [])


@pytest.mark.parametrize("edge", ["gateway", "ingress-nginx"])
def test_the_kind_release_goes_behind_the_edges_front_door(monkeypatch, tmp_path, edge):
    """--edge gateway: the run applies its Gateway and HTTPRoutes before helm installs the
    release with the Ingress off and the host and origin allowed; an Ingress edge leaves
    the chart's Ingress as it is."""
    import yaml
    from mlflow_acceptance.fixtures.k8s import commands
    from mlflow_acceptance.fixtures.targets.kind import target as kind

    from tests.k8s_fakes import backends

    ran: list[list[str]] = []
    monkeypatch.setattr(kind, "run", lambda command, **kw: ran.append(command))
    monkeypatch.setattr(kind, "ensure_namespace", lambda *a: None)
    monkeypatch.setattr(kind, "create_secrets", lambda *a: [])
    target = kind.KindTarget(options_for("kind", edge=edge), "r1", tmp_path)
    target.api, target.kube = object(), commands.KubeContext()
    target.chart = commands.ChartSource("/charts/mlflow")
    target.images = {target.server_version: "mlflow-acceptance/mlflow:0123abcd"}
    target._release(backends("minio"))
    applied = [c for c in ran if c[:2] == ["kubectl", "apply"]]
    layer = yaml.safe_load((target.workdir / "values-run.yaml").read_text())
    assert ran[-1][:3] == ["helm", "upgrade", "--install"]
    if edge == "ingress-nginx":
        assert applied == []
        assert "ingress" not in layer
        return
    (apply,) = applied
    kinds = [d["kind"] for d in yaml.safe_load_all(Path(apply[apply.index("-f") + 1]).read_text())]
    assert kinds == ["Gateway", "HTTPRoute", "HTTPRoute"]
    assert ran.index(apply) < len(ran) - 1  # routes before the release
    assert layer["ingress"] == {"enabled": False}
    assert "localhost" in layer["serverAllowedHosts"]
    assert layer["corsAllowedOrigins"] == ["https://localhost"]


@pytest.mark.parametrize("edge", ["gateway", "traefik", "ingress-nginx"])
def test_the_kind_run_installs_the_add_ons_of_its_edge(monkeypatch, tmp_path, edge):
    """Seen on kind: --edge gateway installed Traefik as an Ingress controller and
    cert-manager without its gateway-shim (the edge was looked up by its controller's
    release name, "traefik"), so no GatewayClass existed and no listener certificate came."""
    from mlflow_acceptance.fixtures.targets.kind import target as kind

    installed = []
    monkeypatch.setattr(
        kind, "install_addons", lambda api, kube, d, say, addons, *a: installed.append(addons)
    )
    monkeypatch.setattr(kind, "write_ca", lambda pem, path: path)
    target = kind.KindTarget(options_for("kind", edge=edge), "r1", tmp_path)
    target._addons()
    (addons,) = installed
    values = {addon.name: addon.values for addon in addons}
    gateway_api = edge == "gateway"
    assert values["traefik" if edge != "ingress-nginx" else "ingress-nginx"]
    if edge != "ingress-nginx":
        providers = values["traefik"]["providers"]
        assert providers.get("kubernetesGateway", {}).get("enabled", False) is gateway_api
    assert ("gatewayAPI" in values["cert-manager"].get("config", {})) is gateway_api
