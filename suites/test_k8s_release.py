"""Checks that only exist on Kubernetes: the release's rollout, security and identity.

They use ``deployment.kubernetes`` (set by the kind and cluster targets) and skip with a
reason everywhere else. The upgrade check installs its own scratch release on its own
scratch database, so the deployment under test is never rolled.
"""

from __future__ import annotations

import base64
import dataclasses
import gzip
import tempfile
from pathlib import Path

import pytest
import yaml
from mlflow_acceptance.fixtures.core import mlflow_api, schema
from mlflow_acceptance.fixtures.core.capabilities import settled_replicas
from mlflow_acceptance.fixtures.k8s import disruption, external_secrets
from mlflow_acceptance.fixtures.k8s.api import KubeError
from mlflow_acceptance.fixtures.k8s.chart import CONTAINER, MIGRATION_CONTAINER, Release
from mlflow_acceptance.fixtures.k8s.release import image_values
from mlflow_acceptance.fixtures.k8s.replicas import container_failures, pod_is_ready

pytestmark = pytest.mark.k8s

UPGRADE_REPLICAS = 3  # maxSurge 100 %: three new pods run their migration init container at once


def kubernetes(deployment):
    access = deployment.kubernetes
    if access is None:
        pytest.skip(f"{deployment.label} is not a Kubernetes target (--target kind or gke)")
    return access


def containers(pod_spec: dict) -> list[dict]:
    return (pod_spec.get("initContainers") or []) + (pod_spec.get("containers") or [])


def test_pods_run_as_non_root(deployment):
    """runAsNonRoot is enforced by the kubelet: a Running pod with it set runs no root process."""
    k8s = kubernetes(deployment)
    if deployment.replica_controller is not None:  # a pod the autoscaler just added: wait
        settled_replicas(deployment.replica_controller)
    # A pod on its way out (scale-in, rollout) is neither Ready nor a reason to fail.
    pods = [p for p in k8s.pods() if not p["metadata"].get("deletionTimestamp")]
    assert pods, f"no running pods match {k8s.release.pod_selector}"
    problems = []
    for pod in pods:
        spec = pod["spec"]
        pod_context = spec.get("securityContext") or {}
        for container in containers(spec):
            context = {**pod_context, **(container.get("securityContext") or {})}
            where = f"{pod['metadata']['name']}/{container['name']}"
            if context.get("runAsNonRoot") is not True:
                problems.append(f"{where}: runAsNonRoot is {context.get('runAsNonRoot')!r}")
            if context.get("runAsUser") == 0:
                problems.append(f"{where}: runAsUser 0")
            if context.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{where}: allowPrivilegeEscalation not false")
    assert not problems, "containers that may run as root:\n" + "\n".join(problems)
    not_ready = [p["metadata"]["name"] for p in pods if not pod_is_ready(p)]
    assert not not_ready, f"pods not Ready (a root image would be refused to start): {not_ready}"


def test_db_credentials_come_from_a_secret(deployment):
    """MYSQL_USERNAME/MYSQL_PWD via secretKeyRef; no literal value or ConfigMap carries them."""
    k8s = kubernetes(deployment)
    template = k8s.deployment_object()["spec"]["template"]["spec"]
    problems = []
    for container in containers(template):
        if container["name"] not in (CONTAINER, MIGRATION_CONTAINER, "dbchecker"):
            continue
        env = {e["name"]: e for e in container.get("env") or []}
        for name in ("MYSQL_USERNAME", "MYSQL_PWD"):
            entry = env.get(name)
            if entry is None:
                problems.append(f"{container['name']}: no {name} env entry")
            elif "value" in entry or "secretKeyRef" not in (entry.get("valueFrom") or {}):
                problems.append(f"{container['name']}: {name} is not read from a Secret")
        if k8s.db_password:
            literal = [e["name"] for e in env.values() if k8s.db_password in str(e.get("value"))]
            args = " ".join(container.get("args") or [])
            if literal or k8s.db_password in args:
                problems.append(f"{container['name']}: the DB password appears literally")
    configmap = k8s.config_map(f"{k8s.release.fullname}-env-configmap")
    leaked = [k for k in configmap.get("data") or {} if "PWD" in k or "PASSWORD" in k]
    if leaked:
        problems.append(f"the env ConfigMap holds {leaked}")
    assert not problems, "DB credentials not (only) from a Secret:\n" + "\n".join(problems)


def server_db_secret(template: dict) -> str | None:
    """The Secret the server container reads MYSQL_PWD from."""
    env = {
        e["name"]: e
        for e in next(c for c in containers(template) if c["name"] == CONTAINER).get("env") or []
    }
    ref = ((env.get("MYSQL_PWD") or {}).get("valueFrom") or {}).get("secretKeyRef") or {}
    return ref.get("name")


def test_db_secret_is_synced_by_external_secrets(deployment):
    """As the reference deployment: the DB Secret the server reads is made by an
    ExternalSecret that is Ready (SecretSynced)."""
    k8s = kubernetes(deployment)
    template = k8s.deployment_object()["spec"]["template"]["spec"]
    secret = server_db_secret(template)
    assert secret, "the server container reads MYSQL_PWD from no Secret"
    try:
        external = external_secrets.for_secret(k8s.api, k8s.release.namespace, secret)
    except LookupError as exc:
        pytest.skip(f"{deployment.label}: {exc} (External Secrets Operator not installed)")
    assert external is not None, (
        f"no ExternalSecret in {k8s.release.namespace} makes Secret {secret}: it was created "
        "by hand, and rotating it in the secret manager would not reach the pods"
    )
    ok, seen = external_secrets.synced(external)
    assert ok, f"ExternalSecret {external['metadata']['name']} is not synced: {seen}"


def test_workload_identity(deployment, run_state):
    """GKE: the server reaches its bucket with the pod's own identity and no key file.

    Proof, not annotation: from inside a server pod, with the pod's credentials, an object
    is written, listed and deleted; and an artifact logged through the front door lands in
    the bucket. The ``iam.gke.io/gcp-service-account`` annotation is recorded, not
    required: Workload Identity Federation can grant IAM to the Kubernetes service account
    itself (principal://…/subject/ns/NAMESPACE/sa/KSA), with no Google service account.
    """
    k8s = kubernetes(deployment)
    if k8s.creates_releases:
        pytest.skip("Workload Identity exists only on GKE (kind uses stand-in credentials)")
    if not k8s.is_gke():
        pytest.skip(f"{deployment.label} is not GKE (its API server version has no -gke.)")
    template = k8s.deployment_object()["spec"]["template"]["spec"]
    account = k8s.service_account(template.get("serviceAccountName", "default"))
    gsa = (account["metadata"].get("annotations") or {}).get("iam.gke.io/gcp-service-account")
    run_state.summary.notes.append(
        f"workload identity: service account {account['metadata']['name']} "
        + (f"impersonates {gsa}" if gsa else "has no GSA annotation (IAM granted to the KSA?)")
    )
    if k8s.workload_identity:
        assert gsa == k8s.workload_identity, f"bound to {gsa}, expected {k8s.workload_identity}"
    for container in containers(template):
        names = {e["name"] for e in container.get("env") or []}
        assert "GOOGLE_APPLICATION_CREDENTIALS" not in names, (
            f"{container['name']} sets GOOGLE_APPLICATION_CREDENTIALS: a key file is in use"
        )
    secret_volumes = [v["name"] for v in template.get("volumes") or [] if "secret" in v]
    assert not secret_volumes, f"secret volumes mounted (key files?): {secret_volumes}"
    pod_store = k8s.pod_store
    assert pod_store is not None, "no server pod to reach the bucket from (pods/exec)"
    probe = f"{deployment.name_prefix}-workload-identity.txt"
    prefix = pod_store.destination.split("://", 1)[1].partition("/")[2]
    key = f"{prefix}/{probe}".lstrip("/")
    pod_store.put(key, b"written by the server pod's own identity\n")
    try:
        assert probe in pod_store.list(probe), f"the pod wrote {key} but cannot list it"
    finally:
        pod_store.delete(key)
    assert probe not in pod_store.list(probe), f"the pod could not delete {key}"
    import mlflow

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "wi.txt"
        path.write_text("workload identity\n")
        experiment = mlflow.create_experiment(deployment.unique_name("workload-identity"))
        with mlflow.start_run(experiment_id=experiment) as run:
            mlflow.log_artifact(str(path))
    keys = pod_store.list(f"{experiment}/{run.info.run_id}")
    assert any(key.endswith("wi.txt") for key in keys), (
        f"the artifact did not reach {pod_store.destination}: {sorted(keys)}"
    )


def _upgrade_values(k8s, release: Release, db, version: str, replicas: int) -> list[Path]:
    layer = {
        "image": image_values(k8s.images[version]),
        "initImages": {"mlflowDbMigration": image_values(k8s.images[version])},
        "replicaCount": replicas,
        "autoscaling": {"enabled": False},
        "ingress": {"enabled": False},
        "backendStore": {
            "mysql": {"host": k8s.scratch_databases.pod_host, "database": db.name},
            "existingDatabaseSecret": {"name": db.secret},
        },
        "serverAllowedHosts": release.in_cluster_hosts(),
    }
    run_layer = k8s.workdir / "values-run.yaml"
    path = k8s.workdir / f"values-{release.name}-{version}.yaml"
    path.write_text(yaml.safe_dump(layer, sort_keys=False))
    return [*k8s.values_files, *([run_layer] if run_layer.is_file() else []), path]


def test_each_replica_serves_the_services_in_cluster_names(deployment):
    """In-cluster clients (jobs, load generators, a notebook in the cluster) reach the
    server by its Service's DNS names, and MLflow's Host guard refuses any name it was not
    given: the chart derives only the Ingress's host, and nothing at all behind a Gateway.
    Each replica must serve the API to every form of the Service's name."""
    k8s = kubernetes(deployment)
    controller = deployment.require("replica_controller", "cannot reach replicas one by one")
    hosts = k8s.release.in_cluster_hosts()
    refused, asked = [], 0
    for replica in settled_replicas(controller):
        for host in hosts:
            asked += 1
            answer = controller.request(
                replica.name,
                f"{mlflow_api.SEARCH_EXPERIMENTS}?max_results=1",
                headers={"Host": host, **deployment.replica_headers()},
            )
            if answer.status != 200:
                refused.append(f"{replica.name} Host {host}: HTTP {answer.status}")
    if refused and not controller.host_header_preserved:
        pytest.skip(
            f"inconclusive: {refused[0]}, but the path to the pod may not carry the Host "
            "sent (the API server's pod proxy)"
        )
    assert not refused, (
        f"{len(refused)} of {asked} calls with an in-cluster name refused ({refused[:4]}): add the "
        f"Service's names to serverAllowedHosts ({', '.join(hosts[:4])}, ...); the chart "
        "allows only the Ingress's host by itself"
    )


def test_a_disruption_budget_keeps_a_replica_through_drains(deployment, hardening, measure):
    """A node drain or cluster upgrade evicts pods through the eviction API: with no
    PodDisruptionBudget it may take every replica at once, an outage nobody chose. No budget
    is a hardening finding (the chart has no PDB template; a platform adds one beside it); a
    budget that allows no eviction at the autoscaler's minimum (drains hang) or allows
    evicting every replica (protects nothing) fails."""
    k8s = kubernetes(deployment)
    pods = [p for p in k8s.pods() if not p["metadata"].get("deletionTimestamp")]
    assert pods, f"no running pods match {k8s.release.pod_selector}"
    try:
        listed = k8s.api.get(
            f"/apis/policy/v1/namespaces/{k8s.release.namespace}/poddisruptionbudgets"
        )
    except KubeError as exc:
        if exc.status != 403:
            raise
        pytest.skip(f"the run may not list PodDisruptionBudgets in {k8s.release.namespace}")
    budgets = disruption.budgets_for(listed.get("items") or [], pods[0]["metadata"]["labels"])
    measure("k8s.disruption_budgets", len(budgets))
    if not budgets:
        hardening(
            f"no PodDisruptionBudget selects the pods of {k8s.release.name}: a node drain or "
            "upgrade may evict every replica at once",
            "add a PodDisruptionBudget with maxUnavailable: 1 for the release's pods and run "
            "at least 2 replicas (autoscaling.minReplicas: 2)",
        )
        return
    if deployment.autoscaler is not None:
        minimum = int(deployment.autoscaler.sample()["min_replicas"])
    else:
        minimum = len(deployment.require("replica_controller", "replica count").list())
    problems = [p for b in budgets if (p := disruption.budget_problem(b, minimum))]
    assert not problems, "; ".join(problems)


def test_upgrade_with_replicas_leaves_schema_at_head(deployment):
    """helm upgrade to a new appVersion with 3 replicas: concurrent migrations, head, all Ready."""
    k8s = kubernetes(deployment)
    if not k8s.creates_releases or k8s.scratch_databases is None:
        pytest.skip("needs a scratch release and database: only on kind (never on Cloud SQL)")
    if k8s.upgrade_from == k8s.server_version:
        pytest.skip(f"nothing to upgrade: {k8s.server_version} is also the starting version")
    target = k8s.images[k8s.server_version]
    scratch = dataclasses.replace(k8s.release, name=f"{k8s.release.name}-up")
    db = k8s.scratch_databases.create(k8s.api, scratch.namespace, "upgrade", k8s.run_id)
    try:
        k8s.helm_upgrade(scratch, _upgrade_values(k8s, scratch, db, k8s.upgrade_from, 1))
        before = db.verifier.alembic_revision()
        k8s.helm_upgrade(
            scratch, _upgrade_values(k8s, scratch, db, k8s.server_version, UPGRADE_REPLICAS)
        )
        after = db.verifier.alembic_revision()
        head = schema.head_for(k8s.server_version)
        pods = [p for p in k8s.pods(scratch) if not p["metadata"].get("deletionTimestamp")]
        current = [p for p in pods if k8s.server_container(p)["image"] == target]
        # A failed migration the kubelet retried shows only in lastState and restartCount.
        failed_migrations = [
            failure for pod in current for failure in container_failures(pod, MIGRATION_CONTAINER)
        ]
        assert after == head, (
            f"after upgrading {k8s.upgrade_from} -> {k8s.server_version} with "
            f"{UPGRADE_REPLICAS} replicas the schema is at {after} (was {before}); head is {head}"
        )
        assert len(current) >= UPGRADE_REPLICAS, f"{len(current)} pods run {target}"
        assert all(pod_is_ready(p) for p in current), "not every upgraded pod is Ready"
        assert not failed_migrations, f"migration init containers failed: {failed_migrations}"
        assert before != after, (
            f"{k8s.upgrade_from} and {k8s.server_version} share the schema {before}: "
            "nothing migrated"
        )
    except AssertionError as exc:
        # The failed migration's log lives only in this release's pods: keep it.
        raise AssertionError(k8s.diagnose(scratch, exc)) from None
    finally:
        k8s.helm_uninstall(scratch)
        k8s.scratch_databases.drop(k8s.api, scratch.namespace, db)


def test_secrets_are_not_in_values(deployment):
    """The release's stored values (helm's Secret) hold no DB password."""
    k8s = kubernetes(deployment)
    if not k8s.db_password:
        pytest.skip("the DB password is unknown to the suite on this target")
    found = k8s.api.get(
        f"/api/v1/namespaces/{k8s.release.namespace}/secrets",
        {"labelSelector": f"owner=helm,name={k8s.release.name}"},
    )
    releases = found.get("items") or []
    assert releases, "no helm release Secret found (owner=helm)"
    for secret in releases:
        blob = helm_release_json(secret)
        assert b'"chart"' in blob, "could not decode helm's release record"
        assert k8s.db_password.encode() not in blob, "the DB password is in helm's release data"


def helm_release_json(secret: dict) -> bytes:
    """Helm stores base64(gzip(JSON)) in the Secret's data, which the API base64s again."""
    raw = base64.b64decode(base64.b64decode(secret["data"]["release"]))
    return gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
