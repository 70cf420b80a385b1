"""Replica controller, resource sampler and diagnostics on recorded API objects (no cluster)."""

from __future__ import annotations

import copy
import datetime as dt
import time

import kubernetes_validate
import pytest
from mlflow_acceptance.fixtures.core.capabilities import (
    DiagnosticsCollector,
    ReplicaController,
    ResourceSampler,
)
from mlflow_acceptance.fixtures.core.redaction import register
from mlflow_acceptance.fixtures.core.waiting import WaitTimeout
from mlflow_acceptance.fixtures.k8s.chart import Release, chart_fullname
from mlflow_acceptance.fixtures.k8s.diagnostics import KubeDiagnostics
from mlflow_acceptance.fixtures.k8s.replicas import PodReplicaController, told_to_stop
from mlflow_acceptance.fixtures.k8s.resources import MetricsApiSampler, cpu_cores, memory_bytes

from tests.k8s_fakes import FakeKube, load, release_routes

RELEASE = Release("mlflow", "mlflow")
READY, CRASHING = "mlflow-6c9f8d7b5-x2kqp", "mlflow-6c9f8d7b5-zt9lm"


@pytest.mark.parametrize("name", ["pods.json", "deployment.json", "ingress.json", "events.json"])
def test_recorded_objects_are_valid_kubernetes_objects(name):
    """The fakes are real shapes: each object passes the 1.36 schema, unknown fields rejected."""
    data = load(name)
    for item in data.get("items", [data]):
        kubernetes_validate.validate(item, "1.36.1", strict=True)


def test_chart_names_and_selector():
    assert chart_fullname("mlflow") == "mlflow"
    assert chart_fullname("staging") == "staging-mlflow"
    assert RELEASE.pod_selector == "app.kubernetes.io/name=mlflow,app.kubernetes.io/instance=mlflow"
    assert "mlflow.mlflow.svc.cluster.local:80" in RELEASE.in_cluster_hosts()


def test_replicas_listed_by_selector_with_readiness_and_restarts():
    fake = FakeKube(release_routes())
    controller = PodReplicaController(fake, RELEASE)
    assert isinstance(controller, ReplicaController)
    replicas = controller.list()
    assert [(r.name, r.ready, r.restarts) for r in replicas] == [
        (READY, True, 0),
        (CRASHING, False, 3),
    ]
    assert replicas[1].detail == "Running, mlflow: CrashLoopBackOff, mlflow last exit: Error"
    assert fake.gets[0] == (
        "/api/v1/namespaces/mlflow/pods",
        {"labelSelector": RELEASE.pod_selector},
    )


def test_crash_is_a_delete_with_grace_period_zero():
    fake = FakeKube(release_routes())
    PodReplicaController(fake, RELEASE).crash(READY)
    assert fake.sent == [
        (
            "DELETE",
            f"/api/v1/namespaces/mlflow/pods/{READY}",
            {"apiVersion": "v1", "kind": "DeleteOptions", "gracePeriodSeconds": 0},
        )
    ]


def test_request_goes_through_the_pod_proxy_on_the_container_port():
    routes = release_routes()
    routes[f"/api/v1/namespaces/mlflow/pods/{READY}:5000/proxy/version"] = "3.15.1"
    fake = FakeKube(routes)
    answer = PodReplicaController(fake, RELEASE).request(
        READY, "/version", headers={"Host": "mlflow"}
    )
    assert (answer.status, answer.text) == (200, "3.15.1")
    assert fake.gets[-1] == (
        f"/api/v1/namespaces/mlflow/pods/{READY}:5000/proxy/version",
        {"Host": "mlflow"},
    )


def test_wait_ready_reports_the_pod_that_is_not(monkeypatch):
    controller = PodReplicaController(FakeKube(release_routes()), RELEASE)
    with pytest.raises(WaitTimeout) as failure:
        controller.wait_ready(timeout=0.1)
    assert "1/2 Ready" in str(failure.value)
    assert "CrashLoopBackOff" in str(failure.value)
    assert controller.wait_ready(timeout=1, expected=1) >= 0


def test_quantities():
    assert cpu_cores("250m") == 0.25
    assert cpu_cores("1") == 1.0
    assert cpu_cores("152345678n") == pytest.approx(0.152345678)
    assert memory_bytes("512Mi") == 512 * 2**20
    assert memory_bytes("2Gi") == 2 * 2**30
    assert memory_bytes("412340Ki") == 412340 * 1024
    assert memory_bytes("1000k") == 10**6


def test_resource_sampler_integrates_the_metrics_api_rate():
    routes = release_routes()
    wall = {"now": dt.datetime(2026, 11, 27, 10, 5, 5, tzinfo=dt.UTC)}
    sampler = MetricsApiSampler(
        FakeKube(routes), RELEASE, clock=lambda: 1000.0, wall=lambda: wall["now"]
    )
    assert isinstance(sampler, ResourceSampler)
    first = {s.replica: s for s in sampler.sample()}[READY]
    assert first.cpu_seconds == pytest.approx(0.152345678 * 15.012)  # rate x window
    assert first.at == pytest.approx(995.0)  # the reading's timestamp, 5 s before "now"
    assert first.cpu_limit_cores == 1.0  # values/base.yaml: limits.cpu 1000m
    assert first.memory_limit_bytes == 2 * 2**30
    assert first.memory_bytes == 412340 * 1024
    later = routes["/apis/metrics.k8s.io/v1beta1/namespaces/mlflow/pods"]["items"][0]
    later["timestamp"] = "2026-11-27T10:05:15Z"
    later["containers"][0]["usage"]["cpu"] = "700m"
    second = {s.replica: s for s in sampler.sample()}[READY]
    rate = (second.cpu_seconds - first.cpu_seconds) / (second.at - first.at)
    assert rate == pytest.approx(0.7)  # what the capability's formula recovers


def test_diagnostics_of_a_failed_check_hold_its_whole_window(tmp_path):
    """A chaos experiment's fault lies minutes back: its logs since the check began, not
    the last 300 lines."""
    fake = FakeKube(release_routes())
    KubeDiagnostics(fake, RELEASE).collect(tmp_path, since=time.time() - 150)
    assert fake.log_queries, "no pod logs were asked for"
    for query in fake.log_queries:
        assert query["tailLines"] == "50000"
        assert 150 <= int(query["sinceSeconds"]) <= 160
    fake = FakeKube(release_routes())
    KubeDiagnostics(fake, RELEASE).collect(tmp_path / "plain")
    assert all(q["tailLines"] == "300" and "sinceSeconds" not in q for q in fake.log_queries)


def test_diagnostics_on_a_fake_failure(tmp_path):
    routes = release_routes()
    fake = FakeKube(routes)
    base = "/api/v1/namespaces/mlflow/pods"
    fake.texts[f"{base}/{CRASHING}/log?previous=true&container=mlflow"] = (
        "2026-11-27T10:03:08Z Detected out-of-date database schema (found version abc, but "
        "expected def). password=s3cr3t-pw\n"
    )
    fake.texts[f"{base}/{CRASHING}/log?previous=false&container=mlflow"] = "starting\n"
    register("s3cr3t-pw")
    diagnostics = KubeDiagnostics(fake, RELEASE)
    assert isinstance(diagnostics, DiagnosticsCollector)
    written = {p.name for p in diagnostics.collect(tmp_path)}
    assert f"{CRASHING}.mlflow-previous.log" in written
    assert f"{READY}.mlflow.log" in written  # unreadable logs still leave a file saying so
    assert f"{CRASHING}.mlflow-db-migration.log" in written
    assert f"describe-pod-{CRASHING}.txt" in written
    assert f"describe-pod-{READY}.txt" not in written  # only failing objects are described
    assert "describe-deployment-mlflow.txt" in written  # 1 of 2 replicas ready
    previous = (tmp_path / f"{CRASHING}.mlflow-previous.log").read_text()
    assert "out-of-date database schema" in previous
    assert "s3cr3t-pw" not in previous
    described = (tmp_path / f"describe-pod-{CRASHING}.txt").read_text()
    assert "Warning BackOff (x7): Back-off restarting failed container mlflow" in described
    assert "managedFields" not in described
    events = (tmp_path / "events.txt").read_text()
    assert f"Pod/{CRASHING} BackOff" in events
    assert not any("/api/v1/namespaces/mlflow/secrets" in path for path, _ in fake.gets), (
        "Secrets are never read"
    )


def test_brief_names_every_pod_and_failing_object():
    brief = KubeDiagnostics(FakeKube(release_routes()), RELEASE).brief()
    assert brief.splitlines() == [
        f"pod {READY}: Ready (Running, restarts 0)",
        f"pod {CRASHING}: not Ready (Running, mlflow: CrashLoopBackOff, "
        "mlflow last exit: Error, restarts 3)",
        "deployment mlflow: FAILING",
    ]


class MetricsServer:
    """metrics-server as the sampler sees it: a new usage sample every 15 s (its
    --metric-resolution), stamped on the wall clock, for one pod burning ``cores``."""

    RESOLUTION = 15.0

    def __init__(self, cores: float, start: dt.datetime) -> None:
        self.cores, self.start = cores, start
        self.now = 0.0  # seconds since start, advanced by the test

    def pod_metrics(self) -> dict:
        published = self.RESOLUTION * int(self.now // self.RESOLUTION)
        stamp = self.start + dt.timedelta(seconds=published)
        item = load("pod-metrics.json")["items"][0]
        item["timestamp"] = stamp.isoformat().replace("+00:00", "Z")
        item["window"] = "15s"
        item["containers"][0]["usage"]["cpu"] = f"{int(self.cores * 1000)}m"
        return {"kind": "PodMetricsList", "items": [item]}


def test_one_hertz_sampling_of_a_15s_source_sees_no_false_idle_seconds(monkeypatch):
    """D1: 1 Hz readings of a metrics API that refreshes every 15 s, with the wall and
    monotonic clocks jittering apart by ±40 µs as measured, must not yield 0 % intervals:
    a steady 400m on a 200m request is 200 % throughout, and the calibration's 20 s
    sustain check must see it."""
    from mlflow_acceptance.load import calibration as calc

    start = dt.datetime(2026, 11, 27, 10, 0, 0, tzinfo=dt.UTC)
    server = MetricsServer(cores=0.4, start=start)
    routes = release_routes()
    fake = FakeKube(routes)
    pods = routes["/api/v1/namespaces/mlflow/pods"]["items"]
    for pod in pods:
        pod["spec"]["containers"][0]["resources"] = {
            "requests": {"cpu": "200m"},
            "limits": {"cpu": "1"},
        }
    metrics_path = "/apis/metrics.k8s.io/v1beta1/namespaces/mlflow/pods"
    jitter = iter([(-1) ** i * 40e-6 for i in range(10_000)])
    mono_start = 5000.0
    sampler = MetricsApiSampler(
        fake,
        RELEASE,
        clock=lambda: mono_start + server.now + next(jitter),
        wall=lambda: start + dt.timedelta(seconds=server.now),
    )
    readings = []
    for second in range(20, 140):  # two minutes of 1 Hz sampling
        server.now = float(second)
        fake.routes[metrics_path] = server.pod_metrics()
        samples = sampler.sample()
        readings.append(calc.Reading(at=max(s.at for s in samples), wall=0.0, replicas=samples))
    cpu = calc.replica_cpu_percent(readings)[READY]
    assert cpu, "no CPU intervals at all"
    assert min(p.value for p in cpu) == pytest.approx(200.0, rel=1e-3), "a false 0 % interval"
    smoothed = calc.rolling_mean(calc.average_across({READY: cpu}), 5.0)
    start_t, end_t = calc.longest_stretch_at_or_above(smoothed, 70.0)
    assert end_t - start_t >= 90, (start_t, end_t)


def test_served_counts_client_requests_in_the_pod_log_not_probes():
    fake = FakeKube(release_routes())
    fake.texts[f"/api/v1/namespaces/mlflow/pods/{READY}/log?previous=None&container=mlflow"] = (
        '2026/12/02 06:00:00 INFO:     10.244.0.1:5 - "GET /health HTTP/1.1" 200\n'
        '2026/12/02 06:00:01 INFO:     10.244.0.7:5 - "POST /api/2.0/mlflow/runs/create '
        'HTTP/1.1" 200\n'
        '2026/12/02 06:00:02 INFO:     10.244.0.7:5 - "PUT /api/2.0/mlflow-artifacts/artifacts/'
        '1/r/artifacts/a.bin HTTP/1.1" 200\n'
        '2026/12/02 06:00:03 INFO:     10.244.0.7:5 - "GET /version HTTP/1.1" 200\n'
    )
    assert PodReplicaController(fake, RELEASE).served(READY, since=1_764_655_200.0) == 2


HPA = "/apis/autoscaling/v2/namespaces/mlflow/horizontalpodautoscalers/mlflow"


def test_hold_sets_the_hpa_to_the_count_and_restores_it_even_after_a_failure(monkeypatch):
    monkeypatch.setattr("mlflow_acceptance.fixtures.k8s.replicas.HOLD_READY_SECONDS", 0.2)
    routes = release_routes()
    routes[HPA] = load("hpa-timeline-scaled.json")[0]["hpa"]  # min 1, max 2
    fake = FakeKube(routes)
    controller = PodReplicaController(fake, RELEASE)

    def failing_experiment():
        with controller.hold(1) as held:
            assert held == 1
            raise RuntimeError("the experiment failed")

    with pytest.raises(RuntimeError):
        failing_experiment()
    assert fake.sent == [
        ("PATCH", HPA, {"spec": {"minReplicas": 1, "maxReplicas": 2}}),
        ("PATCH", HPA, {"spec": {"minReplicas": 1, "maxReplicas": 2}}),
    ]
    fake.sent.clear()
    with pytest.raises(WaitTimeout), controller.hold(3):  # only 1 of 2 pods is Ready here
        pass
    assert fake.sent[0] == ("PATCH", HPA, {"spec": {"minReplicas": 3, "maxReplicas": 3}})
    assert fake.sent[-1] == ("PATCH", HPA, {"spec": {"minReplicas": 1, "maxReplicas": 2}})


def test_hold_without_an_autoscaler_scales_the_deployment():
    fake = FakeKube(release_routes())
    with PodReplicaController(fake, RELEASE).hold(1):
        pass
    path = "/apis/apps/v1/namespaces/mlflow/deployments/mlflow"
    assert [body for _, p, body in fake.sent if p == path] == [
        {"spec": {"replicas": 1}},
        {"spec": {"replicas": 2}},
    ]


def deployment_status(generation=3, observed=3, replicas=2, updated=2, available=2, want=2):
    return {
        "metadata": {"generation": generation},
        "spec": {"replicas": want},
        "status": {
            "observedGeneration": observed,
            "replicas": replicas,
            "updatedReplicas": updated,
            "availableReplicas": available,
        },
    }


def test_a_rollout_is_done_by_kubectl_rollout_status_rules():
    from mlflow_acceptance.fixtures.k8s.replicas import rollout_done

    assert rollout_done(deployment_status()).ok
    assert not rollout_done(deployment_status(observed=2)).ok  # the restart not yet seen
    assert not rollout_done(deployment_status(updated=1, replicas=3)).ok  # surge under way
    assert not rollout_done(deployment_status(replicas=3)).ok  # an old pod still there
    waiting = rollout_done(deployment_status(available=1))
    assert not waiting.ok
    assert "2/2 updated, 1 available, 2 in all" in waiting.seen


def test_roll_is_a_rollout_restart_and_waits_for_it():
    fake = FakeKube(release_routes())
    path = "/apis/apps/v1/namespaces/mlflow/deployments/mlflow"
    fake.routes[path] = deployment_status()
    steps = PodReplicaController(fake, RELEASE).roll(timeout=5).steps
    method, sent_to, body = fake.sent[0]
    assert (method, sent_to) == ("PATCH", path)
    annotations = body["spec"]["template"]["metadata"]["annotations"]
    assert list(annotations) == ["kubectl.kubernetes.io/restartedAt"]
    assert steps[0].startswith("rollout restart at ")


def test_roll_reads_when_each_old_pod_was_told_to_stop():
    """A terminating pod's SIGTERM is its deletionTimestamp less its grace period."""
    routes = release_routes()
    pods = copy.deepcopy(routes["/api/v1/namespaces/mlflow/pods"])
    sent = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(seconds=10)
    pods["items"][0]["metadata"]["deletionTimestamp"] = (
        (sent + dt.timedelta(seconds=30)).isoformat().replace("+00:00", "Z")
    )
    pods["items"][0]["metadata"]["deletionGracePeriodSeconds"] = 30
    routes["/api/v1/namespaces/mlflow/pods"] = pods
    routes["/apis/apps/v1/namespaces/mlflow/deployments/mlflow"] = deployment_status()
    rollout = PodReplicaController(FakeKube(routes), RELEASE).roll(timeout=5)
    [stop] = rollout.stops
    assert 9 <= time.monotonic() - stop <= 11, "SIGTERM was sent about 10 s ago"
    assert told_to_stop(pods["items"][1]) is None  # not terminating
