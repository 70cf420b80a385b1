"""suites/test_k8s_release.py's checks pass on the chart's real objects and fail on bad ones."""

from __future__ import annotations

import base64
import copy
import gzip
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from mlflow_acceptance.fixtures.core.errors import TargetError
from mlflow_acceptance.fixtures.k8s import commands
from mlflow_acceptance.fixtures.k8s.access import KubernetesAccess
from mlflow_acceptance.fixtures.k8s.chart import Release
from mlflow_acceptance.suites import test_k8s_release as checks

from tests.k8s_fakes import FakeKube, load, release_routes

RELEASE = Release("mlflow", "mlflow")
PODS = "/api/v1/namespaces/mlflow/pods"
DEPLOYMENT = "/apis/apps/v1/namespaces/mlflow/deployments/mlflow"
PASSWORD = "pw-recorded-1"  # what the kind target knows: the stand-in DB password


def deployment_with(routes: dict) -> SimpleNamespace:
    routes.setdefault(
        "/api/v1/namespaces/mlflow/configmaps/mlflow-env-configmap", load("configmap.json")
    )
    access = KubernetesAccess(
        api=FakeKube(routes),
        release=RELEASE,
        kube=commands.KubeContext(),
        chart=commands.chart_source(None),
        values_files=[],
        workdir=Path("."),
        run_id="r1",
        server_version="3.17.2",
        upgrade_from="3.14.0",
        creates_releases=True,
        db_password=PASSWORD,
    )
    return SimpleNamespace(
        kubernetes=access, label="fake kind release", replica_controller=WaitsForReady()
    )


class WaitsForReady:
    """A replica controller whose wait for Ready is recorded (the pods are the routes')."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def wait_ready(self, timeout: float, expected: int | None = None) -> float:
        self.waits.append(timeout)
        return 0.0

    def list(self) -> list:
        return []


def ready_pods_only(routes: dict) -> dict:
    routes[PODS]["items"] = routes[PODS]["items"][:1]
    return routes


def test_non_root_passes_on_the_charts_pods():
    checks.test_pods_run_as_non_root(deployment_with(ready_pods_only(release_routes())))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c["securityContext"].update(runAsUser=0), "runAsUser 0"),
        (lambda c: c["securityContext"].pop("runAsNonRoot"), "runAsNonRoot is None"),
        (lambda c: c.pop("securityContext"), "allowPrivilegeEscalation not false"),
    ],
)
def test_non_root_fails_on_a_root_container(change, message):
    routes = ready_pods_only(release_routes())
    change(routes[PODS]["items"][0]["spec"]["containers"][0])
    with pytest.raises(AssertionError, match=message):
        checks.test_pods_run_as_non_root(deployment_with(routes))


def test_db_credentials_pass_on_the_charts_deployment():
    checks.test_db_credentials_come_from_a_secret(deployment_with(release_routes()))


def test_db_credentials_fail_on_a_literal_password():
    routes = release_routes()
    server = routes[DEPLOYMENT]["spec"]["template"]["spec"]["containers"][0]
    entry = next(e for e in server["env"] if e["name"] == "MYSQL_PWD")
    entry.pop("valueFrom")
    entry["value"] = PASSWORD
    with pytest.raises(AssertionError) as failure:
        checks.test_db_credentials_come_from_a_secret(deployment_with(routes))
    assert "mlflow: MYSQL_PWD is not read from a Secret" in str(failure.value)
    assert "mlflow: the DB password appears literally" in str(failure.value)


def test_db_credentials_fail_on_a_password_in_the_configmap():
    routes = release_routes()
    configmap = copy.deepcopy(load("configmap.json"))
    configmap["data"]["MYSQL_PWD"] = "x"
    routes["/api/v1/namespaces/mlflow/configmaps/mlflow-env-configmap"] = configmap
    with pytest.raises(AssertionError, match=r"the env ConfigMap holds \['MYSQL_PWD'\]"):
        checks.test_db_credentials_come_from_a_secret(deployment_with(routes))


def helm_secret(values: dict) -> dict:
    record = json.dumps(
        {"name": "mlflow", "chart": {"metadata": {"name": "mlflow"}}, "config": values}
    )
    encoded = base64.b64encode(gzip.compress(record.encode()))
    return {
        "metadata": {"name": "sh.helm.release.v1.mlflow.v1"},
        "data": {"release": base64.b64encode(encoded).decode()},
    }


@pytest.mark.parametrize(("values", "leaks"), [({"a": 1}, False), ({"password": PASSWORD}, True)])
def test_helm_release_record_is_searched_for_the_password(values, leaks):
    routes = release_routes()
    routes["/api/v1/namespaces/mlflow/secrets"] = {"items": [helm_secret(values)]}
    deployment = deployment_with(routes)
    if leaks:
        with pytest.raises(AssertionError, match="the DB password is in helm's release data"):
            checks.test_secrets_are_not_in_values(deployment)
    else:
        checks.test_secrets_are_not_in_values(deployment)


def test_a_terminating_pod_is_not_counted_as_unready():
    """D8: a pod being deleted (scale-in, rollout) is neither Ready nor a failure."""
    routes = ready_pods_only(release_routes())
    leaving = copy.deepcopy(routes[PODS]["items"][0])
    leaving["metadata"]["name"] += "-old"
    leaving["metadata"]["deletionTimestamp"] = "2026-11-27T10:06:00Z"
    routes[PODS]["items"].append(leaving)
    checks.test_pods_run_as_non_root(deployment_with(routes))


def test_a_migration_that_failed_and_was_retried_is_still_a_failure():
    """D7: after a retry succeeds, state.terminated says exit 0; the failure is in lastState
    and restartCount, where concurrent migrations leave it."""
    from mlflow_acceptance.fixtures.k8s.chart import MIGRATION_CONTAINER
    from mlflow_acceptance.fixtures.k8s.replicas import container_failures

    pod = copy.deepcopy(load("pods.json")["items"][0])
    status = next(
        s for s in pod["status"]["initContainerStatuses"] if s["name"] == MIGRATION_CONTAINER
    )
    assert container_failures(pod, MIGRATION_CONTAINER) == []
    status["restartCount"] = 1
    status["lastState"] = {"terminated": {"exitCode": 1, "reason": "Error"}}
    assert status["state"]["terminated"]["exitCode"] == 0  # the retry succeeded
    failures = container_failures(pod, MIGRATION_CONTAINER)
    assert any("an earlier run exited 1 (Error)" in f for f in failures), failures
    assert any("restarted 1 time(s)" in f for f in failures), failures


class PodStore:
    """The bucket as a server pod reaches it: put, list and delete really kept."""

    destination = "gs://staging-artifacts/mlruns"

    def __init__(self, writable: bool = True) -> None:
        self.objects: dict[str, bytes] = {}
        self.writable = writable

    def put(self, key, data):
        if not self.writable:
            raise PermissionError("403 storage.objects.create denied")
        self.objects[key] = data

    def list(self, prefix=""):
        full = f"mlruns/{prefix}"
        return {k[len("mlruns/") :]: len(v) for k, v in self.objects.items() if k.startswith(full)}

    def delete(self, key):
        self.objects.pop(key)


class ArtifactLogged(Exception):
    """Raised where the check moves on to logging through the front door."""


def gke_release(version: str, pod_store) -> SimpleNamespace:
    routes = release_routes()
    routes["/version"] = {"gitVersion": version}
    routes["/api/v1/namespaces/mlflow/serviceaccounts/mlflow"] = {
        "metadata": {"name": "mlflow"}  # no iam.gke.io annotation: IAM granted to the KSA
    }
    deployment = deployment_with(routes)
    deployment.kubernetes.creates_releases = False
    deployment.kubernetes.pod_store = pod_store
    deployment.name_prefix = "acc-r1"
    return deployment


def test_workload_identity_is_proven_by_the_pods_own_access_not_an_annotation(monkeypatch):
    """Accept a KSA granted IAM directly (no GSA annotation) when the pod really writes,
    lists and deletes in the bucket; refuse a pod that cannot write."""
    import mlflow

    monkeypatch.setattr(
        mlflow, "create_experiment", lambda _: (_ for _ in ()).throw(ArtifactLogged)
    )
    state = SimpleNamespace(summary=SimpleNamespace(notes=[]))
    gke = gke_release("v1.33.5-gke.1080000", PodStore())
    gke.unique_name = lambda what: f"acc-r1-{what}"
    with pytest.raises(ArtifactLogged):
        checks.test_workload_identity(gke, state)
    assert "no GSA annotation" in state.summary.notes[0]
    assert gke.kubernetes.pod_store.objects == {}  # the probe object was deleted again
    with pytest.raises(PermissionError, match="denied"):
        checks.test_workload_identity(gke_release("v1.33.5-gke.1", PodStore(False)), state)


def test_workload_identity_skips_on_a_cluster_that_is_not_gke():
    state = SimpleNamespace(summary=SimpleNamespace(notes=[]))
    with pytest.raises(pytest.skip.Exception, match="is not GKE"):
        checks.test_workload_identity(gke_release("v1.36.1", PodStore()), state)


ES = "/apis/external-secrets.io/v1/namespaces/mlflow/externalsecrets"


def with_external_secrets(*items) -> SimpleNamespace:
    routes = release_routes()
    routes[ES] = {"kind": "ExternalSecretList", "items": list(items)}
    return deployment_with(routes)


def test_the_db_secret_made_by_a_synced_external_secret_passes():
    checks.test_db_secret_is_synced_by_external_secrets(
        with_external_secrets(load("externalsecret.json"))
    )


def test_a_db_secret_made_by_hand_fails():
    other = load("externalsecret.json")
    other["spec"]["target"]["name"] = "something-else"
    with pytest.raises(AssertionError, match="no ExternalSecret in mlflow makes Secret mlflow-db"):
        checks.test_db_secret_is_synced_by_external_secrets(with_external_secrets(other))


def test_an_external_secret_that_does_not_sync_fails_with_its_reason():
    broken = load("externalsecret.json")
    broken["status"]["conditions"][0].update(
        status="False", reason="SecretSyncedError", message="could not get secret data"
    )
    with pytest.raises(AssertionError, match="SecretSyncedError: could not get secret data"):
        checks.test_db_secret_is_synced_by_external_secrets(with_external_secrets(broken))


def test_no_external_secrets_api_skips_with_the_reason():
    with pytest.raises(pytest.skip.Exception, match="not served"):
        checks.test_db_secret_is_synced_by_external_secrets(deployment_with(release_routes()))


def test_kind_makes_the_db_secret_through_the_fake_store():
    from mlflow_acceptance.fixtures.k8s import external_secrets
    from mlflow_acceptance.fixtures.k8s.release import create_secrets

    from tests.k8s_fakes import backends

    routes = release_routes()
    synced = load("externalsecret.json")
    routes[f"{ES}/mlflow-db"] = synced
    routes["/api/v1/namespaces/mlflow/secrets/mlflow-db"] = {"kind": "Secret"}
    fake = FakeKube(routes)
    names = create_secrets(fake, RELEASE, backends("minio"), "r1")
    assert names == ["mlflow-db", "mlflow-s3", "mlflow-keys"]
    posted = {path: body for method, path, body in fake.sent if method == "POST"}
    store = posted[f"{external_secrets.API}/clustersecretstores"]
    assert json.loads(store["spec"]["provider"]["fake"]["data"][0]["value"]) == {
        "username": "mlflow",
        "password": "pw-123456",
    }
    made = posted[ES]
    assert made["spec"]["target"] == {"name": "mlflow-db", "creationPolicy": "Owner"}
    assert "/api/v1/namespaces/mlflow/secrets" in posted  # the S3 keys: a plain Secret
    keys = next(
        body["stringData"]
        for method, path, body in fake.sent
        if path.endswith("/secrets") and body["metadata"]["name"] == "mlflow-keys"
    )
    assert set(keys) == {"MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY", "MLFLOW_CRYPTO_KEK_PASSPHRASE"}
    assert len(base64.urlsafe_b64decode(keys["MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY"])) == 32
    assert not any(
        body and body.get("metadata", {}).get("name") == "mlflow-db"
        for path, body in posted.items()
        if path.endswith("/secrets")
    ), "the DB Secret must come from the operator, not from the run"


def test_a_failed_scratch_upgrade_leaves_its_pods_logs(tmp_path, monkeypatch):
    """The scratch release is uninstalled before the test's own diagnostics run: its state,
    logs and events must be written when helm fails, and the error must say where."""
    scratch = Release("mlflow-up", "mlflow")
    routes = release_routes(name="mlflow-up")
    fake = FakeKube(routes)
    pod = routes[PODS]["items"][1]["metadata"]["name"]
    fake.texts[f"{PODS}/{pod}/log?previous=false&container=mlflow"] = "still importing\n"

    def helm_fails(command, *, timeout, what, **kwargs):
        raise TargetError(f"{what}: exited 1: Progress deadline exceeded")

    monkeypatch.setattr("mlflow_acceptance.fixtures.k8s.access.run", helm_fails)
    access = deployment_with({}).kubernetes
    access.api, access.workdir = fake, tmp_path
    with pytest.raises(TargetError) as failed:
        access.helm_upgrade(scratch, [])
    message = str(failed.value)
    folder = tmp_path / "diagnostics" / "mlflow-up"
    assert "Progress deadline exceeded" in message
    assert f"pod {pod}: not Ready" in message
    assert f"logs, events and state: {folder}" in message
    assert (folder / f"{pod}.mlflow.log").read_text() == "still importing\n"
    assert any(query == {"labelSelector": scratch.pod_selector} for _, query in fake.gets)


def test_non_root_waits_for_ready_and_still_fails_on_a_pod_that_never_gets_there():
    """A pod the autoscaler just added is waited for; one still not Ready after the wait
    (the recorded CrashLoopBackOff pod) fails the check."""
    target = deployment_with(release_routes())
    with pytest.raises(AssertionError, match="pods not Ready"):
        checks.test_pods_run_as_non_root(target)
    assert target.replica_controller.waits, "the check did not wait for Ready"


class AnswersByHost:
    """A replica controller whose replicas answer the API by the Host sent."""

    host_header_preserved = True

    def __init__(self, refused: set[str]) -> None:
        self.refused = refused
        self.hosts: list[str] = []

    def wait_ready(self, timeout: float, expected: int | None = None) -> float:
        return 0.0

    def list(self) -> list:
        return [SimpleNamespace(name="mlflow-0", ready=True)]

    def request(self, name: str, path: str, headers: dict) -> SimpleNamespace:
        self.hosts.append(headers["Host"])
        return SimpleNamespace(status=403 if headers["Host"] in self.refused else 200, text="")


def test_the_in_cluster_names_check_fails_when_the_guard_refuses_one():
    deployment = deployment_with(release_routes())
    deployment.replica_headers = dict
    deployment.require = lambda capability, why: getattr(deployment, capability)
    deployment.replica_controller = AnswersByHost(refused=set())
    checks.test_each_replica_serves_the_services_in_cluster_names(deployment)
    assert set(deployment.replica_controller.hosts) == set(RELEASE.in_cluster_hosts())
    deployment.replica_controller = AnswersByHost(refused={"mlflow.mlflow.svc.cluster.local"})
    with pytest.raises(AssertionError, match=r"1 of 8 calls .* serverAllowedHosts"):
        checks.test_each_replica_serves_the_services_in_cluster_names(deployment)
