"""Locust users that behave like MLflow clients over the REST API, through the front door.

Run by ``mlflow-acceptance load`` (``nox -s load``) as a subprocess; never import this module in
the pytest process (importing locust monkey-patches sockets and threads with gevent).

Users (weights and wait times are options, see ``--mlflow-*`` in ``locust --help``):
- TrackingWriter: create a run, log a batch of metrics/params/tags, end it (FINISHED).
- ArtifactUser: upload a small file through the artifact proxy and download it again.
- Reader: search runs, read a metric's history, load the UI root.

Every experiment is named with ``--mlflow-prefix`` so the runner can delete it afterwards.
TLS is always verified: against ``--mlflow-ca-bundle`` when given, else the system trust
store; an ambient REQUESTS_CA_BUNDLE is ignored because geventhttpclient gets an explicit
SSL context. Requests carry stable names ("runs/create", "artifact upload", ...; locust
shows the method beside them) so stats group by operation, not by run id; the ``setup:``
requests each user makes once are kept apart from them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import random
import secrets
import time
from pathlib import Path
from typing import Any

import gevent.lock
import gevent.ssl
from locust import FastHttpUser, LoadTestShape, events, task
from mlflow_acceptance.fixtures.core.auth import PASSWORD_ENV, USERNAME_ENV, Credentials
from mlflow_acceptance.fixtures.core.mlflow_api import API, ARTIFACTS
from mlflow_acceptance.load import pace, shapes
from mlflow_acceptance.load.runner import Workload

WORKLOAD = Workload()  # the defaults of the user mix, defined once in load/runner.py
DEFAULTS: dict[str, Any] = {
    "mlflow_prefix": None,
    "mlflow_ca_bundle": None,
    "mlflow_shape": "steady",
    "mlflow_steps": 4,
    **{f"mlflow_{f.name}": getattr(WORKLOAD, f.name) for f in dataclasses.fields(Workload)},
}
PACE = pace.Pace()  # this process's users against their own schedule
USER_WEIGHTS = {
    "TrackingWriter": "mlflow_writer_weight",
    "Reader": "mlflow_reader_weight",
    "ArtifactUser": "mlflow_artifact_weight",
}


@events.init_command_line_parser.add_listener
def _add_arguments(parser) -> None:
    group = parser.add_argument_group("MLflow workload (load/locustfile.py)")
    group.add_argument(
        "--mlflow-prefix",
        default=f"acc-load-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}",
        help="name prefix of every experiment created (the runner deletes them afterwards)",
    )
    group.add_argument(
        "--mlflow-ca-bundle", default=None, help="PEM CA bundle to verify the server's TLS"
    )
    group.add_argument("--mlflow-shape", default="steady", choices=tuple(shapes.SHAPES))
    group.add_argument(
        "--mlflow-steps",
        type=int,
        default=DEFAULTS["mlflow_steps"],
        help="stages of the step shape",
    )
    for field in dataclasses.fields(Workload):
        name = f"mlflow_{field.name}"
        kind = type(DEFAULTS[name])
        group.add_argument("--" + name.replace("_", "-"), type=kind, default=DEFAULTS[name])


def setting(environment, name: str) -> Any:
    """A --mlflow-* option; workers receive the master's values with each spawn message."""
    value = getattr(environment.parsed_options, name, None)
    return DEFAULTS[name] if value is None else value


@events.init.add_listener
def _apply_weights(environment, **_kwargs) -> None:
    """Weights drive the master's dispatch, so they are set once the options are parsed."""
    if environment.parsed_options is None:
        return
    for user_class in environment.user_classes:
        option = USER_WEIGHTS.get(user_class.__name__)
        if option:
            user_class.weight = max(int(setting(environment, option)), 0)


@events.quitting.add_listener
def _write_pace(environment, **_kwargs) -> None:
    """Each process that ran users leaves its pace next to the CSVs (load/pace.py)."""
    prefix = getattr(environment.parsed_options, "csv_prefix", None)
    if prefix and PACE.loops:
        PACE.write(Path(f"{prefix}_pace_{os.getpid()}.json"))


def verified_context_factory(ca_bundle: str | None):
    """geventhttpclient calls this with its own default ``cafile``; ours replaces it."""

    def factory(cafile: str | None = None, **_ignored: Any):
        if ca_bundle:
            return gevent.ssl.create_default_context(cafile=ca_bundle)
        return gevent.ssl.create_default_context()

    return factory


class MlflowShape(LoadTestShape):
    """The shape named by --mlflow-shape, with -u users, -r spawn rate and -t duration."""

    use_common_options = True

    def __init__(self) -> None:
        super().__init__()
        self._shape: shapes.Shape | None = None

    def tick(self):
        if self._shape is None:
            options = self.runner.environment.parsed_options
            self._shape = shapes.make_shape(
                setting(self.runner.environment, "mlflow_shape"),
                users=options.num_users or 1,
                spawn_rate=options.spawn_rate or 1,
                duration=options.run_time or 60,
                steps=setting(self.runner.environment, "mlflow_steps"),
            )
        return self._shape.tick(self.get_run_time())


def client_credentials() -> Credentials | None:
    """The user MLflow's client would be (MLFLOW_TRACKING_USERNAME/PASSWORD), on a
    deployment with the basic-auth app; None without."""
    username, password = os.environ.get(USERNAME_ENV), os.environ.get(PASSWORD_ENV)
    return Credentials(username, password) if username and password else None


# Experiment ids of this process by name, so each process creates or looks up its own once.
_experiments: dict[str, str] = {}
_experiment_lock = gevent.lock.Semaphore()


class MlflowUser(FastHttpUser):
    abstract = True
    insecure = False  # FastHttpUser skips verification unless told otherwise
    connection_timeout = 10.0
    network_timeout = 60.0

    def __init__(self, environment) -> None:
        self.ssl_context_factory = verified_context_factory(
            setting(environment, "mlflow_ca_bundle")
        )
        super().__init__(environment)
        user = client_credentials()
        if user is not None:  # every request presents them, as MLflow's client would
            self.client.auth_header = user.header["Authorization"]
        self.prefix = setting(environment, "mlflow_prefix")
        self._task_began: float | None = None  # when the task after the last wait began

    def wait_time(self) -> float:
        """Sleeps here instead of in locust (which then sleeps 0) to time the wake-up
        against the wait asked for: a late one is the generator falling behind."""
        now = time.monotonic()
        if self._task_began is not None:
            PACE.note_task(now - self._task_began)
        low = setting(self.environment, "mlflow_wait_min")
        asked = random.uniform(low, max(setting(self.environment, "mlflow_wait_max"), low))
        gevent.sleep(asked)
        self._task_began = time.monotonic()
        PACE.note_wait(asked, self._task_began - now - asked)
        return 0.0

    # ---- HTTP helpers -------------------------------------------------------------------
    def call(self, method: str, path: str, name: str, ok=(200,), **kwargs) -> dict | None:
        """One request under ``name``; a failure in the stats unless its status is in ``ok``."""
        with self.client.request(method, path, name=name, catch_response=True, **kwargs) as resp:
            if resp.status_code not in ok:
                resp.failure(f"HTTP {resp.status_code}: {(resp.text or '')[:160]}")
                return None
            resp.success()
            if resp.status_code != 200:
                return {"status": resp.status_code, "body": resp.text or ""}
            if not resp.content:
                return {}  # e.g. an artifact upload answers 200 with an empty body
            try:
                return resp.json()
            except ValueError:
                resp.failure(f"HTTP 200 without JSON: {(resp.text or '')[:160]}")
                return None

    def experiment_id(self) -> str | None:
        """The run's experiment, created by whichever user of this process asks first."""
        name = self.prefix
        with _experiment_lock:
            if name in _experiments:
                return _experiments[name]
            found = self.call(
                "GET",
                f"{API}/experiments/get-by-name?experiment_name={name}",
                "setup: experiments/get-by-name",
                ok=(200, 404),
            )
            if found and "experiment" in found:
                _experiments[name] = found["experiment"]["experiment_id"]
                return _experiments[name]
            created = self.call(
                "POST",
                f"{API}/experiments/create",
                "setup: experiments/create",
                ok=(200, 400),  # 400 RESOURCE_ALREADY_EXISTS: another process made it
                json={"name": name},
            )
            if created and "experiment_id" in created:
                _experiments[name] = created["experiment_id"]
                return _experiments[name]
            found = self.call(
                "GET",
                f"{API}/experiments/get-by-name?experiment_name={name}",
                "setup: experiments/get-by-name",
            )
            if found and "experiment" in found:
                _experiments[name] = found["experiment"]["experiment_id"]
            return _experiments.get(name)

    def create_run(self, experiment_id: str, name: str, request_name: str) -> str | None:
        body = {
            "experiment_id": experiment_id,
            "run_name": f"{self.prefix}-{name}",
            "start_time": now_ms(),
            "tags": [{"key": "mlflow.source.name", "value": "mlflow-acceptance load"}],
        }
        created = self.call("POST", f"{API}/runs/create", request_name, json=body)
        return created["run"]["info"]["run_id"] if created else None


def now_ms() -> int:
    return int(time.time() * 1000)


class TrackingWriter(MlflowUser):
    """A training job: one run per task, a batch of metrics, params and tags, then FINISHED."""

    weight = 3

    @task
    def log_a_run(self) -> None:
        experiment_id = self.experiment_id()
        if experiment_id is None:
            return
        run_id = self.create_run(experiment_id, "train", "runs/create")
        if run_id is None:
            return
        stamp = now_ms()
        batch = {
            "run_id": run_id,
            "metrics": [
                {"key": key, "value": random.random(), "timestamp": stamp, "step": step}
                for key in ("loss", "accuracy", "val_loss", "val_accuracy", "lr")
                for step in range(4)
            ],
            "params": [
                {"key": key, "value": str(random.randint(1, 1000))}
                for key in ("batch_size", "epochs", "seed", "optimizer", "layers")
            ],
            "tags": [{"key": f"load.tag{i}", "value": secrets.token_hex(4)} for i in range(3)],
        }
        if self.call("POST", f"{API}/runs/log-batch", "runs/log-batch", json=batch) is None:
            return
        self.call(
            "POST",
            f"{API}/runs/update",
            "runs/update",
            json={"run_id": run_id, "status": "FINISHED", "end_time": now_ms()},
        )


class ArtifactUser(MlflowUser):
    """Uploads a small file through the server's artifact proxy and reads it back."""

    weight = 1
    files_per_user = 50  # names are reused round-robin so a long soak writes a bounded set

    def on_start(self) -> None:
        self.run: tuple[str, str] | None = None
        self.count = 0

    def ensure_run(self) -> tuple[str, str] | None:
        if self.run is None:
            experiment_id = self.experiment_id()
            if experiment_id is not None:
                run_id = self.create_run(experiment_id, "artifacts", "setup: runs/create")
                if run_id:
                    self.run = (experiment_id, run_id)
        return self.run

    @task
    def upload_and_download(self) -> None:
        run = self.ensure_run()
        if run is None:
            return
        self.count += 1
        path = (
            f"{ARTIFACTS}/{run[0]}/{run[1]}/artifacts/load/"
            f"blob-{self.count % self.files_per_user}.bin"
        )
        payload = os.urandom(int(setting(self.environment, "mlflow_artifact_bytes")))
        if self.call("PUT", path, "artifact upload", data=payload) is None:
            return
        with self.client.get(path, name="artifact download", catch_response=True) as resp:
            if resp.status_code != 200:
                resp.failure(f"HTTP {resp.status_code}: {(resp.text or '')[:160]}")
            elif hashlib.sha256(resp.content or b"").digest() != hashlib.sha256(payload).digest():
                resp.failure(f"downloaded {len(resp.content or b'')} bytes differ from upload")


class Reader(MlflowUser):
    """Someone browsing: run search, a metric's history, and the UI's root page."""

    weight = 3

    def on_start(self) -> None:
        self.run: tuple[str, str] | None = None

    def ensure_run(self) -> tuple[str, str] | None:
        """A run of its own with a metric history, so reads return real data."""
        if self.run is None:
            experiment_id = self.experiment_id()
            if experiment_id is None:
                return None
            run_id = self.create_run(experiment_id, "history", "setup: runs/create")
            if run_id is None:
                return None
            stamp = now_ms()
            metrics = [
                {"key": "loss", "value": 1.0 / (step + 1), "timestamp": stamp, "step": step}
                for step in range(50)
            ]
            logged = self.call(
                "POST",
                f"{API}/runs/log-batch",
                "setup: runs/log-batch",
                json={"run_id": run_id, "metrics": metrics},
            )
            if logged is not None:
                self.run = (experiment_id, run_id)
        return self.run

    @task(3)
    def search_runs(self) -> None:
        run = self.ensure_run()
        if run is None:
            return
        self.call(
            "POST",
            f"{API}/runs/search",
            "runs/search",
            json={
                "experiment_ids": [run[0]],
                "max_results": 50,
                "order_by": ["attributes.start_time DESC"],
            },
        )

    @task(3)
    def metric_history(self) -> None:
        run = self.ensure_run()
        if run is None:
            return
        self.call(
            "GET",
            f"{API}/metrics/get-history?run_id={run[1]}&metric_key=loss",
            "metrics/get-history",
        )

    @task(1)
    def ui_root(self) -> None:
        with self.client.get("/", name="UI root", catch_response=True) as resp:
            if resp.status_code != 200 or "<html" not in (resp.text or "").lower():
                resp.failure(f"HTTP {resp.status_code}: not the UI page")
