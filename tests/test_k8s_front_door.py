"""The front door seam: an Ingress (the chart's) or a Gateway + HTTPRoute (the run's on kind
with --edge gateway, or a platform's, as on GKE), and the Gateway the kind run writes."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest
import yaml
from mlflow_acceptance.fixtures.k8s.addons import (
    ALL_ADDONS,
    CERT_MANAGER_GATEWAY_ADDON,
    EDGES,
    GATEWAY_CLASS,
    addons_for,
    gateway_front_door,
)
from mlflow_acceptance.fixtures.k8s.certificates import CertManagerInspector
from mlflow_acceptance.fixtures.k8s.chart import Release
from mlflow_acceptance.fixtures.k8s.front_door import GATEWAY_API, find_front_door, from_ingress
from mlflow_acceptance.fixtures.registry import options_for
from mlflow_acceptance.fixtures.targets.cluster.target import ClusterTarget

from tests.k8s_fakes import FakeKube, load, release_routes

RELEASE = Release("mlflow", "mlflow")
KIND_GATEWAY = gateway_front_door("gateway", "localhost")


def kind_gateway_routes() -> dict:
    """The API as it answers on kind with --edge gateway: the run's objects, no Ingress."""
    gateway, https_route, redirect = KIND_GATEWAY.manifests(RELEASE)
    routes = release_routes()
    del routes[f"/apis/networking.k8s.io/v1/namespaces/{RELEASE.namespace}/ingresses/mlflow"]
    routes[f"{GATEWAY_API}/namespaces/mlflow/httproutes"] = {"items": [redirect, https_route]}
    routes[f"{GATEWAY_API}/namespaces/mlflow/gateways/{gateway['metadata']['name']}"] = gateway
    routes[f"{GATEWAY_API}/gatewayclasses/{GATEWAY_CLASS}"] = {
        "spec": {"controllerName": "traefik.io/gateway-controller"}
    }
    return routes


def gke_gateway_routes() -> dict:
    routes = release_routes()
    del routes[f"/apis/networking.k8s.io/v1/namespaces/{RELEASE.namespace}/ingresses/mlflow"]
    routes[f"{GATEWAY_API}/namespaces/mlflow/httproutes"] = load("gke-httproutes.json")
    routes[f"{GATEWAY_API}/namespaces/platform-gateways/gateways/mlflow-external"] = load(
        "gke-gateway.json"
    )
    routes[f"{GATEWAY_API}/gatewayclasses/gke-l7-global-external-managed"] = load(
        "gke-gatewayclass.json"
    )
    return routes


def test_the_charts_ingress_is_the_front_door_when_there_is_one():
    door = find_front_door(FakeKube(release_routes()), RELEASE)
    assert door == from_ingress(load("ingress.json"))
    assert (door.kind, door.host, door.https, door.has_http_entry) == (
        "Ingress",
        "localhost",
        True,
        True,
    )
    assert door.tls_secret == ("mlflow", "mlflow-tls")
    assert door.expected_issuer == "ClusterIssuer/mlflow-acc-ca"


def test_the_kind_gateway_is_followed_from_the_route_to_its_https_listener():
    door = find_front_door(FakeKube(kind_gateway_routes()), RELEASE)
    assert door is not None
    assert (door.kind, door.name, door.host, door.https) == (
        "Gateway",
        "mlflow-gateway",
        "localhost",
        True,
    )
    assert door.tls_secret == ("mlflow", "mlflow-tls")
    assert door.expected_issuer == "ClusterIssuer/mlflow-acc-ca"
    assert door.has_http_entry  # the HTTP listener, which redirects
    assert "traefik.io/gateway-controller" in door.describe()


def test_a_platform_gateway_in_another_namespace_as_on_gke():
    """GKE's Gateway controller: a shared Gateway in a platform namespace, HTTPS only; the
    release's route sits beside routes to other Services."""
    door = find_front_door(FakeKube(gke_gateway_routes()), RELEASE)
    assert door is not None
    assert door.origin == "https://mlflow.staging.example.com"
    assert door.tls_secret == ("platform-gateways", "mlflow-staging-tls")
    assert door.expected_issuer == "ClusterIssuer/letsencrypt-prod"
    assert not door.has_http_entry  # no HTTP listener: nothing to redirect from
    assert "networking.gke.io/gateway" in door.describe()


def test_routes_to_other_services_are_not_the_releases_front_door():
    routes = gke_gateway_routes()
    listed = routes[f"{GATEWAY_API}/namespaces/mlflow/httproutes"]
    listed["items"] = [r for r in listed["items"] if r["metadata"]["name"] == "grafana"]
    assert find_front_door(FakeKube(routes), RELEASE) is None


def test_no_gateway_api_served_means_no_front_door_object():
    routes = release_routes()
    del routes[f"/apis/networking.k8s.io/v1/namespaces/{RELEASE.namespace}/ingresses/mlflow"]
    assert find_front_door(FakeKube(routes), RELEASE) is None


def test_the_certificate_inspector_follows_a_gateway_listener_to_its_certificate():
    found = CertManagerInspector(FakeKube(kind_gateway_routes()), RELEASE).status()
    assert found["ready"] is True
    assert found["issuer"] == found["expected_issuer"] == "ClusterIssuer/mlflow-acc-ca"
    assert found["front_door"].startswith("Gateway mlflow/mlflow-gateway")
    assert found["secret_certificate_pem"].startswith("-----BEGIN CERTIFICATE-----")


def test_the_gke_target_tests_through_a_gateway_and_derives_its_entries(tmp_path):
    target = ClusterTarget(options_for("gke"), "r1", tmp_path)
    target.api, target.context = FakeKube(gke_gateway_routes()), "staging"
    seen = target._observe()
    assert seen.tracking_uri == "https://mlflow.staging.example.com"
    assert seen.http_url is None  # HTTPS-only Gateway: the redirect check has no entry
    assert seen.front_door.startswith("Gateway platform-gateways/mlflow-external")
    kind = ClusterTarget(options_for("gke"), "r1", tmp_path)
    kind.api, kind.context = FakeKube(kind_gateway_routes()), "kind-mlflow-acc"
    assert kind._observe().http_url == "http://localhost"


def test_the_kind_gateway_meets_cert_manager_and_traefik():
    """gateway-shim skips a listener without a hostname, with a Secret elsewhere or not in
    Terminate mode; Traefik matches listeners to entry points by their pod port."""
    gateway, https_route, redirect = KIND_GATEWAY.manifests(RELEASE)
    assert gateway["metadata"]["annotations"] == {"cert-manager.io/cluster-issuer": "mlflow-acc-ca"}
    assert gateway["spec"]["gatewayClassName"] == GATEWAY_CLASS
    http, https = gateway["spec"]["listeners"]
    assert (http["protocol"], http["port"], https["protocol"], https["port"]) == (
        "HTTP",
        8000,
        "HTTPS",
        8443,
    )
    assert https["hostname"] == "localhost"
    assert https["tls"] == {
        "mode": "Terminate",
        "certificateRefs": [{"kind": "Secret", "name": "mlflow-tls"}],
    }
    assert https_route["spec"]["rules"][0]["backendRefs"] == [{"name": "mlflow", "port": 80}]
    headers = https_route["spec"]["rules"][0]["filters"][0]["responseHeaderModifier"]["set"]
    assert headers[0]["name"] == "Strict-Transport-Security"
    assert redirect["spec"]["parentRefs"] == [{"name": "mlflow-gateway", "sectionName": "http"}]
    assert redirect["spec"]["rules"][0]["filters"][0]["requestRedirect"] == {
        "scheme": "https",
        "statusCode": 301,
    }
    assert "backendRefs" not in redirect["spec"]["rules"][0]


def test_without_the_ingress_the_gateway_host_and_origin_are_allowed_explicitly():
    """The chart allows the Ingress's host and origin by itself; behind a Gateway it cannot,
    and MLflow would refuse every request through it with 403."""
    assert KIND_GATEWAY.chart_values() == {
        "ingress": {"enabled": False},
        "corsAllowedOrigins": ["https://localhost"],
    }
    assert KIND_GATEWAY.allowed_hosts() == ["localhost"]


def test_the_gateway_edge_is_traefiks_gateway_provider_and_cert_manager_reads_gateways():
    edge, cert_manager = addons_for("gateway")[1:3]
    assert edge.name == "traefik"  # one chart option (--traefik-chart) for both Traefik edges
    providers = edge.values["providers"]
    assert providers["kubernetesGateway"] == {"enabled": True}
    assert providers["kubernetesIngressNginx"] == {"enabled": False}
    assert providers["kubernetesIngress"] == {"enabled": False}
    assert edge.values["gateway"] == {"enabled": False}  # the run makes its own
    assert not any(o["kind"] == "IngressClass" for o in edge.values["extraObjects"])
    ingress_ports = EDGES["traefik"].values["ports"]
    assert edge.values["ports"]["websecure"] == ingress_ports["websecure"]  # HSTS, timeouts
    # HTTP is the run's HTTPRoute's to redirect: an entry-point redirect answered first, so
    # the redirect check proved Traefik's setting, not the route (seen on kind, 2026-12-03).
    assert "http" not in edge.values["ports"]["web"]
    assert ingress_ports["web"]["http"]["redirections"]["entryPoint"]["to"] == "websecure"
    assert edge.values["ports"]["web"]["hostPort"] == 80
    assert cert_manager is CERT_MANAGER_GATEWAY_ADDON
    assert addons_for("ingress-nginx")[2].values == {"crds": {"enabled": True}}  # no CRDs there
    assert [a.name for a in ALL_ADDONS] == sorted(
        {a.name for a in ALL_ADDONS}, key=[a.name for a in ALL_ADDONS].index
    )
    assert gateway_front_door("traefik", "localhost") is None


def test_the_gateway_edge_runs_offline_too():
    assert options_for("kind", offline=True, edge="gateway").edge == "gateway"
    assert options_for("kind", offline=True).edge == "traefik"


GATEWAY_API_CRDS = os.environ.get("GATEWAY_API_CRDS", "")


@pytest.mark.skipif(
    not GATEWAY_API_CRDS,
    reason="set GATEWAY_API_CRDS to Gateway API's standard-install.yaml (Traefik's chart "
    "ships it as crds/gateway-standard-install.yaml)",
)
def test_the_kind_gateway_validates_against_the_gateway_api_crds():
    import jsonschema

    schemas = {}
    for crd in yaml.safe_load_all(Path(GATEWAY_API_CRDS).read_text()):
        if crd and crd.get("kind") == "CustomResourceDefinition":
            for served in crd["spec"]["versions"]:
                key = (crd["spec"]["names"]["kind"], served["name"])
                schemas[key] = served["schema"]["openAPIV3Schema"]
    objects = [*KIND_GATEWAY.manifests(RELEASE), copy.deepcopy(load("gke-gateway.json"))]
    objects += load("gke-httproutes.json")["items"]
    for obj in objects:
        schema = schemas[(obj["kind"], obj["apiVersion"].split("/")[1])]
        jsonschema.validate(obj, schema)  # raises with the field that is wrong
