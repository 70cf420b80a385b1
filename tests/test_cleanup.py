"""Leftovers of a killed run are removed by the next run; a live run is left alone."""

from __future__ import annotations

import os
import socket

from mlflow_acceptance.fixtures.core.labels import OWNER_HOST, OWNER_PID, RUN, run_labels
from mlflow_acceptance.fixtures.docker.runs import reap_stale


class FakeContainer:
    def __init__(self, name, labels, registry):
        self.name, self.labels, self.registry = name, labels, registry

    def remove(self, force, v):
        assert force, "containers must be removed even when running"
        assert v, "containers must be removed with their anonymous volumes"
        self.registry.remove(self)


class FakeNetwork:
    def __init__(self, name, labels, registry):
        self.name, self.attrs, self.registry = name, {"Labels": labels}, registry

    def remove(self):
        self.registry.remove(self)


class FakeCollection:
    def __init__(self, items):
        self.items = items

    def list(self, all=False, filters=None):
        wanted = (filters or {}).get("label")
        out = []
        for item in self.items:
            labels = getattr(item, "labels", None) or item.attrs["Labels"]
            if wanted is None:
                out.append(item)
            elif "=" in wanted:
                key, value = wanted.split("=", 1)
                if labels.get(key) == value:
                    out.append(item)
            elif wanted in labels:
                out.append(item)
        return out


class FakeDocker:
    def __init__(self):
        self.container_list, self.network_list = [], []
        self.containers = FakeCollection(self.container_list)
        self.networks = FakeCollection(self.network_list)

    def add_run(self, run_id, labels):
        self.container_list.append(FakeContainer(f"{run_id}-db", labels, self.container_list))
        self.network_list.append(FakeNetwork(f"net-{run_id}", labels, self.network_list))


def dead_pid() -> int:
    pid = 2**22 - 3
    while True:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return pid
        except PermissionError:
            pass
        pid -= 1


def test_reaps_runs_whose_process_is_gone_and_keeps_live_ones():
    docker = FakeDocker()
    docker.add_run("live", run_labels("live"))
    docker.add_run(
        "dead", {RUN: "dead", OWNER_HOST: socket.gethostname(), OWNER_PID: str(dead_pid())}
    )
    docker.add_run(
        "elsewhere", {RUN: "elsewhere", OWNER_HOST: "another-machine", OWNER_PID: str(dead_pid())}
    )
    said = []
    removed = reap_stale(docker, said.append)
    assert sorted(removed) == ["dead-db", "network net-dead"]
    assert {c.name for c in docker.container_list} == {"live-db", "elsewhere-db"}
    assert len(said) == 1
    assert "interrupted run dead" in said[0]


def test_labels_name_the_owner():
    labels = run_labels("r1", "server")
    assert labels[RUN] == "r1"
    assert labels[OWNER_PID] == str(os.getpid())
    assert labels["io.mlflow-acceptance.role"] == "server"
