"""Certificate evaluation on a recorded cert-manager Certificate and its TLS Secret."""

from __future__ import annotations

import copy
import datetime as dt

import pytest
from mlflow_acceptance.fixtures.core.capabilities import CertificateInspector
from mlflow_acceptance.fixtures.core.tls import evaluate_certificate
from mlflow_acceptance.fixtures.k8s.certificates import CertManagerInspector, summarize_certificate
from mlflow_acceptance.fixtures.k8s.chart import Release
from mlflow_acceptance.fixtures.k8s.front_door import expected_issuer

from tests.k8s_fakes import DATA, FakeKube, load, release_routes

NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)  # between notBefore and renewalTime
ISSUER = "ClusterIssuer/mlflow-acc-ca"


def status(certificate=None, secret=None, expected=ISSUER):
    return summarize_certificate(
        certificate or load("certificate.json"), secret or load("certificate-secret.json"), expected
    )


def test_inspector_follows_the_ingress_to_certificate_and_secret():
    inspector = CertManagerInspector(FakeKube(release_routes()), Release("mlflow", "mlflow"))
    assert isinstance(inspector, CertificateInspector)
    found = inspector.status()
    assert found["ready"] is True
    assert found["generation_observed"] is True
    assert found["issuer"] == found["expected_issuer"] == ISSUER  # from the annotation
    assert found["hosts"] == ["localhost"]
    assert found["not_after"] == dt.datetime(2027, 2, 25, 10, tzinfo=dt.UTC)
    assert found["secret_certificate_pem"].startswith("-----BEGIN CERTIFICATE-----")
    assert evaluate_certificate(found, NOW) == []


def test_issuer_expected_from_ingress_annotations():
    assert expected_issuer(load("ingress.json")) == ISSUER
    namespaced = {"metadata": {"annotations": {"cert-manager.io/issuer": "le"}}}
    assert expected_issuer(namespaced) == "Issuer/le"
    assert expected_issuer({"metadata": {}}) is None


def test_the_served_certificate_must_be_the_secrets():
    secret_pem = status()["secret_certificate_pem"]
    assert evaluate_certificate(status(), NOW, served_pem=secret_pem) == []
    other = (DATA / "other-leaf.pem").read_text()
    problems = evaluate_certificate(status(), NOW, served_pem=other)
    assert len(problems) == 1
    assert "serves a different certificate" in problems[0]


def broken(change):
    certificate = copy.deepcopy(load("certificate.json"))
    change(certificate)
    return certificate


def not_ready(c):
    c["status"]["conditions"][0].update(status="False", reason="Issuing", message="pending")


def stale_generation(c):
    c["metadata"]["generation"] = 2


def wrong_issuer(c):
    c["spec"]["issuerRef"]["name"] = "selfsigned"


def never_issued(c):
    for key in ("notAfter", "notBefore", "renewalTime"):
        c["status"].pop(key)


def status_not_the_secret(c):
    c["status"]["notAfter"] = "2027-03-01T00:00:00Z"
    c["status"]["renewalTime"] = "2027-01-01T00:00:00Z"


def extra_name(c):
    c["spec"]["dnsNames"].append("mlflow.example.com")


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (not_ready, "is not Ready (Issuing: pending)"),
        (stale_generation, "older generation"),
        (wrong_issuer, "issued by ClusterIssuer/selfsigned, expected ClusterIssuer/mlflow-acc-ca"),
        (never_issued, "never issued"),
        (status_not_the_secret, "the secret is not the issued certificate"),
        (extra_name, "lacks the Certificate's dnsNames ['mlflow.example.com']"),
    ],
)
def test_each_defect_is_reported(change, expected):
    problems = evaluate_certificate(status(broken(change)), NOW)
    assert any(expected in problem for problem in problems), problems


def test_renewal_time_in_the_past_is_reported():
    later = dt.datetime(2027, 1, 30, tzinfo=dt.UTC)  # after renewalTime 2027-01-26
    problems = evaluate_certificate(status(), later)
    assert problems == [
        "expected now < renewalTime < notAfter, got now=2027-01-30T00:00:00Z, "
        "renewalTime=2027-01-26T10:00:00Z, notAfter=2027-02-25T10:00:00Z"
    ]


def test_missing_tls_secret_is_reported():
    secret = load("certificate-secret.json")
    secret["data"].pop("tls.crt")
    assert "the TLS secret has no tls.crt" in evaluate_certificate(status(secret=secret), NOW)


def test_an_unreadable_tls_secret_still_checks_the_certificate_as_issued():
    """D9: a read-only identity without `get secrets` gets 403: the Certificate is still
    judged (Ready, issuer, renewal window); only the comparison with the Secret is not made."""
    from mlflow_acceptance.fixtures.k8s.api import KubeError

    routes = release_routes()
    routes["/api/v1/namespaces/mlflow/secrets/mlflow-tls"] = KubeError(403, "secrets", "forbidden")
    found = CertManagerInspector(FakeKube(routes), Release("mlflow", "mlflow")).status()
    assert found["secret_readable"] is False
    other = (DATA / "other-leaf.pem").read_text()
    assert evaluate_certificate(found, NOW, served_pem=other) == []
    routes["/apis/cert-manager.io/v1/namespaces/mlflow/certificates/mlflow-tls"] = broken(
        lambda c: c["status"]["conditions"][0].update(status="False", reason="Failed")
    )
    found = CertManagerInspector(FakeKube(routes), Release("mlflow", "mlflow")).status()
    assert any("is not Ready" in p for p in evaluate_certificate(found, NOW))


def test_renewal_is_asked_the_way_cmctl_asks_it():
    """cmctl renew: an Issuing condition, reason ManuallyTriggered, on the status
    subresource, every other condition kept (a merge patch replaces the whole list)."""
    kube = FakeKube(release_routes())
    renewed = CertManagerInspector(kube, Release("mlflow", "mlflow")).renew()
    assert renewed == "mlflow/mlflow-tls"
    ((method, path, body),) = kube.sent
    assert (method, path) == (
        "PATCH",
        "/apis/cert-manager.io/v1/namespaces/mlflow/certificates/mlflow-tls/status",
    )
    conditions = body["status"]["conditions"]
    before = load("certificate.json")["status"]["conditions"]
    assert conditions[:-1] == [c for c in before if c["type"] != "Issuing"]
    issuing = conditions[-1]
    assert (issuing["type"], issuing["status"], issuing["reason"]) == (
        "Issuing",
        "True",
        "ManuallyTriggered",
    )
    assert issuing["observedGeneration"] == load("certificate.json")["metadata"]["generation"]
