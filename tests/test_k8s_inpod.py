"""Verification from inside a server pod: the script really runs (here against SQLite, in a
subprocess standing in for the container), requests go to a Ready pod through the exec
API, and a failure in the pod is one line naming where."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow_acceptance.fixtures.core.capabilities import ObjectStoreVerifier
from mlflow_acceptance.fixtures.k8s.chart import Release
from mlflow_acceptance.fixtures.k8s.inpod import (
    MARK,
    SCRIPT,
    InPodDatabase,
    InPodError,
    InPodObjectStore,
    ServerPodExec,
    in_pod,
)

from tests.k8s_fakes import FakeKube, release_routes

RELEASE = Release("mlflow", "mlflow")
READY = "mlflow-6c9f8d7b5-x2kqp"


class LocalContainer:
    """A "container" that is a subprocess with the server's environment, and this
    interpreter first on PATH as the image's python3."""

    where = "a local stand-in container"

    def __init__(self, env: dict[str, str]) -> None:
        self.env = env

    def run(self, argv, timeout):
        path = f"{Path(sys.executable).parent}:{os.environ['PATH']}"
        done = subprocess.run(
            argv, env={"PATH": path, **self.env}, capture_output=True, text=True, timeout=timeout
        )
        return done.returncode, done.stdout, done.stderr


def test_the_script_queries_the_servers_database_from_its_own_uri(tmp_path):
    db = tmp_path / "mlflow.db"
    with sqlite3.connect(db) as connection:
        connection.execute("CREATE TABLE runs (run_uuid TEXT)")
        connection.execute("INSERT INTO runs VALUES ('r1'), ('r2')")
    runner = LocalContainer({"MLFLOW_BACKEND_STORE_URI": f"sqlite:///{db}"})
    rows = in_pod(runner, {"op": "query", "sql": "SELECT run_uuid FROM runs WHERE run_uuid = ?",
                           "params": ["r2"]})  # fmt: skip
    assert rows == [{"run_uuid": "r2"}]


def test_a_failure_in_the_pod_is_one_line_naming_where(tmp_path):
    runner = LocalContainer({})  # no backend store URI anywhere
    with pytest.raises(InPodError) as caught:
        in_pod(runner, {"op": "query", "sql": "SELECT 1", "params": []})
    message = str(caught.value)
    assert message.startswith("in a local stand-in container: query failed (exit 1)")
    assert "--backend-store-uri is neither in its environment nor its arguments" in message


def test_requests_go_to_a_ready_server_pod_through_the_exec_api():
    fake = FakeKube(release_routes())
    fake.execs["query"] = (0, MARK + json.dumps([{"n": 3}]) + "\n", "")
    database = InPodDatabase(ServerPodExec(fake, RELEASE))
    assert database.query("SELECT COUNT(*) AS n FROM runs") == [{"n": 3}]
    method, where, command = fake.sent[-1]
    assert (method, where) == ("EXEC", f"mlflow/{READY}/mlflow")  # the Ready one of two
    assert json.loads(command[-1]) == {
        "op": "query", "sql": "SELECT COUNT(*) AS n FROM runs", "params": []
    }  # fmt: skip
    assert not database.admin
    with pytest.raises(InPodError, match="kills nothing"):
        database.kill_server_sessions()


def test_the_object_store_digests_in_one_call():
    fake = FakeKube(release_routes())
    answer = {"1/r/artifacts/chaos/a.txt": [4, "ab" * 32]}
    fake.execs["digests"] = (0, MARK + json.dumps(answer), "")
    store = InPodObjectStore(ServerPodExec(fake, RELEASE))
    assert store.digests("1/r/artifacts") == {"1/r/artifacts/chaos/a.txt": (4, "ab" * 32)}
    assert len([s for s in fake.sent if s[0] == "EXEC"]) == 1


def test_no_ready_pod_is_said():
    routes = release_routes()
    routes["/api/v1/namespaces/mlflow/pods"]["items"] = []
    with pytest.raises(InPodError, match="no Ready pod of mlflow"):
        InPodDatabase(ServerPodExec(FakeKube(routes), RELEASE)).ping()


@pytest.mark.parametrize(
    ("destination", "prefix"),
    [("gs://bucket/mlruns", "mlruns"), ("s3://b/a/b/", "a/b"), ("gs://bucket", "")],
)
def test_the_object_store_knows_its_prefix(destination, prefix):
    """The traversal check tells keys inside the destination from keys outside by it (the
    gke path against kind failed every traversal case on its absence)."""
    fake = FakeKube(release_routes())
    fake.execs["destination"] = (0, MARK + json.dumps(destination), "")
    store = InPodObjectStore(ServerPodExec(fake, RELEASE))
    assert store.prefix == prefix
    assert isinstance(store, ObjectStoreVerifier)


@pytest.mark.parametrize(
    ("prefix", "relative", "key"),
    [("mlruns", "1/", "mlruns/1/"), ("mlruns", "1", "mlruns/1"), ("", "1/", "1/"), ("", "", "")],
)
def test_both_bucket_readers_keep_a_trailing_slash(prefix, relative, key):
    """The loss audit lists experiment "1/" in one call; without the slash it would also
    list (and hash) experiments 10-19, 100-199..."""
    from mlflow_acceptance.fixtures.core.object_store import _join

    assert _join(prefix, relative) == key
    in_pod_script: dict = {}
    exec(SCRIPT.split("request = json.loads")[0], in_pod_script)  # noqa: S102 (definitions only)
    bucket = object.__new__(in_pod_script["Bucket"])
    bucket.prefix = prefix
    assert bucket.key(relative) == key
