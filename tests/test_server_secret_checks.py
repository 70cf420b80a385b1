"""The server-secrets checks fail on a webhook some worker cannot read and on the default
passphrase, and skip only where the server has nothing to judge."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from mlflow_acceptance.fixtures.core.capabilities import HttpAnswer, Replica
from mlflow_acceptance.suites import test_server_secrets as checks

WEBHOOK = SimpleNamespace(webhook_id="w1", name="acc-run-webhook-1")
READ = '{"webhook": {"webhook_id": "w1", "name": "acc-run-webhook-1"}}'
INVALID_TOKEN = "Internal Server Error"


class Http:
    def __init__(self, answers):
        self.answers, self.count = answers, 0

    def get(self, path, timeout=None):
        self.count += 1
        status, text = self.answers(self.count)
        return SimpleNamespace(status_code=status, text=text, json=lambda: json.loads(text))


class Replicas:
    """Two replicas answering from ``answers(replica, n)``."""

    def __init__(self, answers):
        self.answers, self.count = answers, 0

    def wait_ready(self, timeout, expected=None):
        return 0.0

    def list(self):
        return [Replica("server-1", True), Replica("server-2", True)]

    def request(self, replica, path, timeout=10.0, headers=None):
        self.count += 1
        return HttpAnswer(*self.answers(replica, self.count))


def deployment(front_door, replicas=None):
    return SimpleNamespace(
        http=Http(front_door),
        replica_controller=replicas,
        expected_version="3.17.2",
        replica_headers=dict,  # no auth app
    )


def test_reads_from_every_worker_pass():
    target = deployment(lambda n: (200, READ), Replicas(lambda r, n: (200, READ)))
    checks.test_a_webhook_secret_reads_back_from_every_replica(target, WEBHOOK)
    assert target.http.count == checks.FRONT_DOOR_READS
    assert target.replica_controller.count == 2 * checks.READS_PER_REPLICA


def test_one_worker_of_four_reading_it_is_a_failure_naming_the_key():
    # Workers take reads in turn; only the one that created the webhook has its key.
    target = deployment(lambda n: (200, READ) if n % 4 == 1 else (500, INVALID_TOKEN))
    with pytest.raises(AssertionError) as failure:
        checks.test_a_webhook_secret_reads_back_from_every_replica(target, WEBHOOK)
    message = str(failure.value)
    assert "could not read a webhook with a secret in 18 of 24 reads" in message
    assert "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY" in message


def test_a_replica_that_cannot_read_it_fails_even_when_the_front_door_can():
    replicas = Replicas(lambda r, n: (200, READ) if r == "server-1" else (500, INVALID_TOKEN))
    target = deployment(lambda n: (200, READ), replicas)
    with pytest.raises(AssertionError, match="server-2: HTTP 500"):
        checks.test_a_webhook_secret_reads_back_from_every_replica(target, WEBHOOK)


def test_a_200_without_the_webhook_is_not_a_read():
    target = deployment(lambda n: (200, '{"webhook": {}}'))
    with pytest.raises(AssertionError, match="24 of 24"):
        checks.test_a_webhook_secret_reads_back_from_every_replica(target, WEBHOOK)


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (200, '{"secrets_available": true, "using_default_passphrase": false}', "pass"),
        (200, '{"secrets_available": true, "using_default_passphrase": true}', "fail"),
        (501, '{"error_code": "NOT_IMPLEMENTED"}', "skip"),
        (404, "Not Found", "skip"),
        (200, '{"secrets_available": true}', "skip"),  # hidden from non-admins (auth app)
        (500, "Internal Server Error", "fail"),
    ],
)
def test_the_gateway_passphrase_check(status, body, outcome):
    target = deployment(lambda n: (status, body))
    run = checks.test_gateway_secrets_are_not_under_the_default_passphrase
    if outcome == "pass":
        run(target)
    elif outcome == "skip":
        with pytest.raises(pytest.skip.Exception):
            run(target)
    else:
        with pytest.raises(AssertionError):
            run(target)
