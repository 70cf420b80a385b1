"""Secrets the server keeps for its users are readable by every replica, and not under a
key anyone can look up.

A webhook's HMAC secret is stored encrypted with ``MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY``.
Without one shared key, each server process makes its own when it starts: the webhook works
on the worker that created it and answers 500 on every other worker, replica, and after any
restart, and its deliveries stop being signed. The AI gateway's secrets (provider API keys)
are wrapped under ``MLFLOW_CRYPTO_KEK_PASSPHRASE``, or, unset, under the default passphrase
printed in MLflow's source. fixtures/core/server_keys.py says where the keys come from.
"""

from __future__ import annotations

import secrets

import pytest
from mlflow.exceptions import MlflowException
from mlflow_acceptance.fixtures.core import mlflow_api, server_keys
from mlflow_acceptance.fixtures.core.capabilities import settled_replicas

pytestmark = pytest.mark.acceptance

# DISABLED, so never delivered: the address only has to pass MLflow's URL check (https, a
# public IP, no DNS lookup needed). 192.88.99.0/24 is the retired 6to4 relay prefix.
WEBHOOK_URL = "https://192.88.99.1/mlflow-acceptance"
FRONT_DOOR_READS = 24  # spread over every worker of every replica behind the front door
READS_PER_REPLICA = 12  # straight to each replica, over its workers
ROLL_TIMEOUT = 2 * 150  # both replicas replaced (chaos/test_rollout.py's bound)
KEY_ADVICE = (
    f"every replica needs the same {server_keys.WEBHOOK_KEY} (a Fernet key, from a Secret): "
    "without it each server process encrypts webhook secrets with a key of its own"
)


@pytest.fixture
def webhook_with_secret(deployment, run_state):
    """A disabled webhook with an HMAC secret, deleted afterwards (the janitor sweeps it by
    name if the run dies first)."""
    deployment.require_server("3.3", "webhooks")
    client = deployment.mlflow_client()
    webhook = client.create_webhook(
        name=deployment.unique_name("webhook"),
        url=WEBHOOK_URL,
        events=["registered_model.created"],
        secret=secrets.token_urlsafe(24),
        status="DISABLED",
    )
    yield webhook
    try:
        client.delete_webhook(webhook.webhook_id)
    except MlflowException as exc:  # a server that cannot read it cannot delete it either
        run_state.summary.notes.append(
            f"cleanup: webhook {webhook.name} not deleted: {exc.message[:160]}"
        )


def unreadable(answers: list[tuple[str, int, str]], name: str) -> list[str]:
    """The reads that did not return the webhook: (where, HTTP status, body) each."""
    return [
        f"{where}: HTTP {status} {body[:160]!r}"
        for where, status, body in answers
        if status != 200 or name not in body
    ]


def read_everywhere(deployment, webhook) -> list[tuple[str, int, str]]:
    """GET the webhook through the front door, and from each replica where the target
    reaches them one by one."""
    path = f"{mlflow_api.WEBHOOKS}/{webhook.webhook_id}"
    answers = []
    for _ in range(FRONT_DOOR_READS):
        response = deployment.http.get(path, timeout=10)
        answers.append(("the front door", response.status_code, response.text))
    if deployment.replica_controller is not None:
        for replica in settled_replicas(deployment.replica_controller):
            for _ in range(READS_PER_REPLICA):
                answer = deployment.replica_controller.request(
                    replica.name, path, headers=deployment.replica_headers()
                )
                answers.append((replica.name, answer.status, answer.text))
    return answers


def test_a_webhook_secret_reads_back_from_every_replica(deployment, webhook_with_secret):
    answers = read_everywhere(deployment, webhook_with_secret)
    failed = unreadable(answers, webhook_with_secret.name)
    assert not failed, (
        f"could not read a webhook with a secret in {len(failed)} of {len(answers)} reads "
        f"(expected HTTP 200 with the webhook from every worker): {failed[:3]}: {KEY_ADVICE}"
    )


@pytest.mark.disruptive
def test_a_webhook_secret_reads_back_after_every_replica_restarted(deployment, webhook_with_secret):
    """A single replica with one worker reads its own secrets; only a restart shows whether
    the key outlives the process. With more processes the reads above already cross them."""
    controller = deployment.require("replica_controller", "cannot restart replicas")
    processes = len(controller.list()) * (deployment.server_workers or 1)
    if processes > 1:
        pytest.skip(
            f"{processes} server processes: a key of each process's own already fails "
            "test_a_webhook_secret_reads_back_from_every_replica, no restart needed"
        )
    steps = controller.roll(timeout=ROLL_TIMEOUT).steps
    answers = read_everywhere(deployment, webhook_with_secret)
    failed = unreadable(answers, webhook_with_secret.name)
    assert not failed, (
        f"could not read a webhook with a secret after a restart ({'; '.join(steps)}) in "
        f"{len(failed)} of {len(answers)} reads: {failed[:3]}: {KEY_ADVICE}"
    )


@pytest.mark.hardening  # the stock chart sets no passphrase
def test_gateway_secrets_are_not_under_the_default_passphrase(deployment):
    response = deployment.http.get(mlflow_api.GATEWAY_SECRETS_CONFIG, timeout=10)
    if response.status_code == 404:
        pytest.skip(f"the server (MLflow {deployment.expected_version}) has no gateway secrets")
    if response.status_code == 501:
        pytest.skip("the AI gateway is disabled (MLFLOW_ENABLE_AI_GATEWAY=false): no secrets")
    assert response.status_code == 200, (
        f"the gateway's secrets config answered HTTP {response.status_code} "
        f"{response.text[:200]!r}, expected 200"
    )
    config = response.json()
    if "using_default_passphrase" not in config:
        pytest.skip("the server hides whether it uses the default passphrase from this user")
    assert config["using_default_passphrase"] is False, (
        "the AI gateway's secrets (provider API keys) are encrypted under the default "
        "passphrase printed in MLflow's source: whoever reads the database can decrypt them; "
        f"set {server_keys.KEK_PASSPHRASE} on every replica from a Secret"
    )
