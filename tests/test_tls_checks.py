"""The TLS checks against real sockets: a TLS 1.2+ server refuses TLS 1.0 (the check
passes), but a front door that speaks plain HTTP is not a refusal (the check fails), and a
plain-HTTP tracking URI is one clear failure, not a crash of the TLS suite."""

from __future__ import annotations

import socket
import ssl
import threading
from types import SimpleNamespace

import pytest
import trustme
from mlflow_acceptance.suites import test_tls as checks


def serve(handle) -> int:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()

    def loop():
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=handle, args=(connection,), daemon=True).start()

    threading.Thread(target=loop, daemon=True).start()
    return listener.getsockname()[1]


def plain_http(connection):
    connection.recv(4096)
    connection.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    connection.close()


def tls12_only(connection):
    ca = trustme.CA()
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    ca.issue_cert("127.0.0.1").configure_cert(context)
    try:
        with context.wrap_socket(connection, server_side=True) as tls:
            tls.recv(1)
    except (ssl.SSLError, OSError):
        pass


def deployment(port: int, scheme: str = "https"):
    return SimpleNamespace(tracking_uri=f"{scheme}://127.0.0.1:{port}", ca_bundle=None)


def test_a_tls12_server_refusing_tls10_passes():
    checks.test_legacy_tls_versions_are_refused(deployment(serve(tls12_only)), "TLSv1")


def test_plain_http_behind_an_https_url_is_not_a_refusal():
    with pytest.raises(AssertionError, match="not as a refusal"):
        checks.test_legacy_tls_versions_are_refused(deployment(serve(plain_http)), "TLSv1")


def test_a_plain_http_front_door_is_one_failure_and_the_rest_skip():
    plain = deployment(serve(plain_http), scheme="http")
    with pytest.raises(AssertionError, match="the front door does not serve HTTPS"):
        checks.test_front_door_serves_https(plain)
    with pytest.raises(pytest.skip.Exception, match="plain HTTP"):
        checks.test_legacy_tls_versions_are_refused(plain, "TLSv1")
    with pytest.raises(pytest.skip.Exception, match="plain HTTP"):
        checks.test_hsts_is_sent(plain, None)  # skips before it asks for responses
