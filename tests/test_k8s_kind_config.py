"""kind-config.yaml, and the kind cluster created through pytest-kubernetes' manager class."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml
from mlflow_acceptance.fixtures.core.errors import SetupError
from mlflow_acceptance.fixtures.k8s import commands
from mlflow_acceptance.fixtures.k8s.versions import KIND_NODE_IMAGE
from mlflow_acceptance.fixtures.targets.kind import kind_cluster
from mlflow_acceptance.fixtures.targets.kind.kind_cluster import KindCluster, kind_config_name

CONFIG = Path(__file__).resolve().parents[1] / "kind-config.yaml"
# Fields of kind.x-k8s.io/v1alpha4 used here (kind v0.32.0 pkg/apis/config/v1alpha4/types.go);
# kind unmarshals strictly, so a misspelt key fails `kind create cluster`.
CLUSTER_KEYS = {"kind", "apiVersion", "name", "nodes", "networking", "featureGates"}
NODE_KEYS = {"role", "image", "labels", "extraPortMappings", "extraMounts", "kubeadmConfigPatches"}
PORT_KEYS = {"containerPort", "hostPort", "listenAddress", "protocol"}


@pytest.fixture(scope="module")
def config() -> dict:
    return yaml.safe_load(CONFIG.read_text())


def test_cluster_is_named_and_uses_known_fields(config):
    assert config["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    assert config["kind"] == "Cluster"
    assert kind_config_name(CONFIG) == config["name"] == "mlflow-acc"
    assert set(config) <= CLUSTER_KEYS
    for node in config["nodes"]:
        assert set(node) <= NODE_KEYS, node
        for mapping in node.get("extraPortMappings", []):
            assert set(mapping) <= PORT_KEYS, mapping


def test_every_node_image_is_pinned_by_tag_and_digest(config):
    images = {node["image"] for node in config["nodes"]}
    assert images == {KIND_NODE_IMAGE}
    tag, digest = KIND_NODE_IMAGE.split("@")
    assert tag.startswith("kindest/node:v1.")
    assert digest.startswith("sha256:")
    assert len(digest) == len("sha256:") + 64


def test_one_ingress_ready_control_plane_with_loopback_ports_and_workers(config):
    roles = [node["role"] for node in config["nodes"]]
    assert roles.count("control-plane") == 1
    assert roles.count("worker") >= 1
    control = next(node for node in config["nodes"] if node["role"] == "control-plane")
    assert control["labels"] == {"ingress-ready": "true"}
    mapped = {
        (m["containerPort"], m["hostPort"], m["listenAddress"])
        for m in control["extraPortMappings"]
    }
    assert mapped == {(80, 80, "127.0.0.1"), (443, 443, "127.0.0.1")}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("kind: Cluster\n", "has no top-level name:"),
        ("[unclosed", "is not YAML"),
        ("- a list\n", "has no top-level name:"),
    ],
)
def test_bad_kind_configs_fail_with_one_line(tmp_path, text, message):
    path = tmp_path / "kind.yaml"
    path.write_text(text)
    with pytest.raises(SetupError) as failure:
        kind_config_name(path)
    assert message in failure.value.line()
    assert "\n" not in failure.value.line()


def test_missing_kind_config_fails_with_one_line(tmp_path):
    with pytest.raises(SetupError, match="no such file"):
        kind_config_name(tmp_path / "absent.yaml")


def test_cluster_is_created_through_pytest_kubernetes_with_the_config(monkeypatch, tmp_path):
    """The manager gets the config via the constructor/ClusterOptions and runs kind with it."""
    from pytest_kubernetes.providers import base

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setattr(base.shutil, "which", lambda name: sys.executable)  # "kind" exists
    ran: list[list[str]] = []
    readiness = iter([False, True])  # not running yet; Ready after create
    monkeypatch.setattr(base.AClusterManager, "ready", lambda self, timeout=20: next(readiness))
    monkeypatch.setattr(
        base.AClusterManager,
        "_exec",
        lambda self, args, additional_env={}, timeout=None: ran.append(args),
    )
    cluster = KindCluster(CONFIG, keep=True, say=lambda line: None)
    monkeypatch.setattr(cluster, "exists", lambda: False)
    kubeconfig = cluster.start()
    assert ran == [commands.kind_create(cluster.config, kubeconfig)[1:]]
    assert cluster.manager.cluster_name == "mlflow-acc"
    assert cluster.context == "kind-mlflow-acc"
    assert kubeconfig == tmp_path / "mlflow-acceptance" / "kind" / "mlflow-acc.kubeconfig"
    assert cluster.stop() == []  # kept: nothing deleted


def test_an_unkept_cluster_is_deleted_by_name(monkeypatch, tmp_path):
    from pytest_kubernetes.providers import base

    monkeypatch.setattr(base.shutil, "which", lambda name: sys.executable)
    ran: list[list[str]] = []
    readiness = iter([False, True])
    monkeypatch.setattr(base.AClusterManager, "ready", lambda self, timeout=20: next(readiness))
    monkeypatch.setattr(
        base.AClusterManager,
        "_exec",
        lambda self, args, additional_env={}, timeout=None: ran.append(args),
    )
    monkeypatch.setattr(base, "sleep", lambda seconds: None)
    monkeypatch.setattr(kind_cluster, "remove_idle_kind_network", lambda: ["network"])
    cluster = KindCluster(CONFIG, keep=False, say=lambda line: None)
    monkeypatch.setattr(cluster, "exists", lambda: False)
    cluster.start()
    assert cluster.stop() == ["kind cluster mlflow-acc", "network"]
    assert ran[-1] == commands.kind_delete("mlflow-acc")[1:]
