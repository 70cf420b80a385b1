"""TLS at the front door: trust, names, lifetime, protocol versions, redirect, HSTS, and the
MLflow client configured with MLFLOW_TRACKING_SERVER_CERT_PATH. With a certificate inspector
(cert-manager on Kubernetes), also how the certificate was issued."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
import warnings
from urllib.parse import urlsplit

import pytest
from cryptography import x509
from mlflow_acceptance.fixtures.core.client_process import ClientProcessError, run_client
from mlflow_acceptance.fixtures.core.tls import evaluate_certificate
from mlflow_acceptance.fixtures.core.tls import served_certificate as fetch_served_certificate

pytestmark = pytest.mark.acceptance

# cert-manager renews at 2/3 of a certificate's lifetime by default, so a healthy one always
# has at least a third left; relative, since public lifetimes keep shrinking.
MIN_REMAINING_FRACTION = 1 / 3
MIN_HSTS_SECONDS = 180 * 24 * 3600
# How a TLS 1.2+ server turns down a TLS 1.0/1.1 ClientHello, as OpenSSL reports it.
REFUSALS = (
    "ALERT_PROTOCOL_VERSION",
    "UNSUPPORTED_PROTOCOL",
    "ALERT_HANDSHAKE_FAILURE",
    "NO_SHARED_CIPHER",
    "UNEXPECTED_EOF",
)


def endpoint(deployment) -> tuple[str, int]:
    parts = urlsplit(deployment.tracking_uri)
    if parts.scheme != "https":
        pytest.skip(
            f"the front door is plain HTTP ({deployment.tracking_uri}): see "
            "test_front_door_serves_https"
        )
    return parts.hostname, parts.port or 443


def handshake(host: str, port: int, context: ssl.SSLContext) -> ssl.SSLSocket:
    raw = socket.create_connection((host, port), timeout=10)
    try:
        return context.wrap_socket(raw, server_hostname=host)
    except BaseException:
        raw.close()
        raise


def trust_context(deployment) -> ssl.SSLContext:
    if deployment.ca_bundle:
        return ssl.create_default_context(cafile=str(deployment.ca_bundle))
    return ssl.create_default_context()


@pytest.fixture(scope="module")
def served_certificate(deployment) -> x509.Certificate:
    """The certificate the front door serves, chain verified; names are judged by a test."""
    endpoint(deployment)  # skips on plain HTTP
    return fetch_served_certificate(deployment.tracking_uri, deployment.ca_bundle)


def test_front_door_serves_https(deployment):
    """Every other check here needs TLS at the front door; without it they skip, and this
    one failure says why."""
    scheme = urlsplit(deployment.tracking_uri).scheme
    assert scheme == "https", (
        f"the front door does not serve HTTPS: the tracking URI is {deployment.tracking_uri} "
        "(test through the ingress's https:// host, or give --tracking-uri https://…)"
    )


def test_handshake_verifies_with_the_deployment_ca(deployment):
    """The served chain verifies against the deployment's CA (or the system store) at TLS
    1.2+. (A handshake trusting no CA fails against any server: no check in that.)"""
    host, port = endpoint(deployment)
    with handshake(host, port, trust_context(deployment)) as tls:
        assert tls.version() in ("TLSv1.2", "TLSv1.3"), tls.version()


def test_certificate_names_the_host(deployment, served_certificate):
    host, _ = endpoint(deployment)
    san = served_certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    names = set(san.value.get_values_for_type(x509.DNSName))
    addresses = {str(a) for a in san.value.get_values_for_type(x509.IPAddress)}
    try:
        ipaddress.ip_address(host)
        matched = host in addresses
    except ValueError:
        matched = host in names or any(
            n.startswith("*.") and host.split(".", 1)[-1] == n[2:] for n in names
        )
    assert matched, f"certificate SANs {sorted(names | addresses)} do not include {host}"


def test_certificate_has_enough_validity_left(served_certificate, measure):
    now = dt.datetime.now(dt.UTC)
    start, end = served_certificate.not_valid_before_utc, served_certificate.not_valid_after_utc
    lifetime, left = end - start, end - now
    fraction = left / lifetime
    measure("tls.certificate_days_left", round(left.total_seconds() / 86400, 1))
    assert start <= now, f"certificate not valid before {start}"
    assert fraction >= MIN_REMAINING_FRACTION, (
        f"only {left.days} of {lifetime.days} days ({fraction:.0%}) left: below "
        f"{MIN_REMAINING_FRACTION:.0%}, renewal is overdue (cert-manager renews at 2/3)"
    )


@pytest.mark.parametrize("version", ["TLSv1", "TLSv1_1"])
def test_legacy_tls_versions_are_refused(deployment, version):
    host, port = endpoint(deployment)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        tls_version = getattr(ssl.TLSVersion, version)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        context.minimum_version = context.maximum_version = tls_version
    # Let this client offer the old protocol at all (OpenSSL 3 hides it at level >= 1).
    context.set_ciphers("DEFAULT:@SECLEVEL=0")
    try:
        with handshake(host, port, context) as tls:
            negotiated = tls.version()
    except (ssl.SSLError, ConnectionResetError) as exc:
        failure = exc
    else:
        pytest.fail(f"the front door accepted a {negotiated} handshake; allow TLS 1.2+ only")
    reason = str(failure).upper().replace(" ", "_")
    if "NO_PROTOCOLS_AVAILABLE" in reason:
        pytest.skip(f"this client's OpenSSL cannot offer {version}: {failure}")
    # Refused means the server declined the protocol (an alert, or closing the connection
    # on it), not that something other than TLS answered.
    refused = isinstance(failure, ConnectionResetError) or any(m in reason for m in REFUSALS)
    assert refused, f"the {version} handshake failed, but not as a refusal of it: {failure}"


def test_plain_http_redirects_to_https(deployment):
    if deployment.http_url is None:
        pytest.skip(f"{deployment.label}: no plain-HTTP entry known to test")
    response = deployment.http.get(f"{deployment.http_url}/health?probe=1")
    location = response.headers.get("Location", "")
    assert response.status_code in (301, 302, 307, 308), (
        f"GET {deployment.http_url}/health answered {response.status_code}, not a redirect: "
        "plain HTTP must not serve the API"
    )
    target = urlsplit(location)
    assert target.scheme == "https", f"redirect goes to {location!r}, not HTTPS"
    assert target.hostname == urlsplit(deployment.http_url).hostname, location
    assert location.endswith("/health?probe=1"), f"redirect drops the path: {location}"


def test_hsts_is_sent(deployment, request):
    """On every kind of HTTPS response, errors included, with max-age >= 180 days."""
    endpoint(deployment)  # HSTS is a header of HTTPS responses
    for what, response in request.getfixturevalue("responses_of_each_kind"):
        header = response.headers.get("Strict-Transport-Security", "")
        hint = "; an nginx add_header needs `always`" if response.status_code >= 400 else ""
        assert header, (
            f"no Strict-Transport-Security header on {what} (HTTP {response.status_code}){hint}"
        )
        directives = dict(
            [*part.strip().split("=", 1), ""][:2] for part in header.split(";") if part.strip()
        )
        max_age = int(directives.get("max-age", "0") or 0)
        assert max_age >= MIN_HSTS_SECONDS, (
            f"HSTS max-age={max_age}s is under 180 days on {what}: {header!r}"
        )


def test_mlflow_client_trusts_the_server_through_cert_path(deployment, tmp_path):
    endpoint(deployment)
    name = deployment.unique_name("cert-path")
    created = deployment.mlflow_client().create_experiment(name)
    script = "out['found'] = client.get_experiment_by_name(os.environ['NAME']).experiment_id"
    out = run_client(
        script,
        deployment.tracking_uri,
        tmp_path / "with",
        deployment.ca_bundle,
        extra_env={"NAME": name},
        credentials=deployment.credentials,
    )
    assert out["found"] == created, f"the client found {name!r} as {out['found']}, not {created}"
    if deployment.ca_bundle is None:
        pytest.skip(
            "the client trusted the front door with the system store; with a publicly "
            "trusted certificate there is no CA bundle to withhold for the negative half"
        )
    with pytest.raises(ClientProcessError) as caught:
        run_client(
            script,
            deployment.tracking_uri,
            tmp_path / "without",
            None,
            # An untrusted certificate is not transient: retries would only delay the verdict.
            extra_env={"NAME": name, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0"},
            credentials=deployment.credentials,
        )
    assert "CERTIFICATE_VERIFY_FAILED" in str(caught.value), (
        f"without the CA bundle the client failed for another reason: {caught.value}"
    )


def test_certificate_was_issued_as_declared(deployment, served_certificate, run_state):
    inspector = deployment.require(
        "certificates", "no certificate issuer to inspect (cert-manager)"
    )
    from cryptography.hazmat.primitives.serialization import Encoding

    status = inspector.status()
    served_pem = served_certificate.public_bytes(Encoding.PEM).decode()
    problems = evaluate_certificate(status, dt.datetime.now(dt.UTC), served_pem)
    assert not problems, f"the front door's certificate is not as issued: {problems}"
    if not status.get("secret_readable", True):
        note = (
            f"tls: the TLS Secret {status['name']} is not readable by this identity (403): the "
            "certificate was checked as issued, not compared with what the front door serves"
        )
        if note not in run_state.summary.notes:
            run_state.summary.notes.append(note)
