"""The loss audit reports what a broken deployment lost, and counts duplicates apart.

A fake client stands for a deployment where one replica wrote to its own database: some
acknowledged runs and metrics are simply not there when read back.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from types import SimpleNamespace

from mlflow.exceptions import MlflowException
from mlflow_acceptance.chaos.audit import audit, cut_by_a_kill
from mlflow_acceptance.chaos.experiment import Action, Experiment, Probe
from mlflow_acceptance.chaos.workload import OP_TAG, Op
from mlflow_acceptance.fixtures.core.waiting import Observation


def run(run_id, op_id, params=None, tags=None, status="RUNNING"):
    return SimpleNamespace(
        info=SimpleNamespace(run_id=run_id, status=status),
        data=SimpleNamespace(params=params or {}, tags={OP_TAG: op_id, **(tags or {})}),
    )


class Page(list):
    token = None


class FakeClient:
    def __init__(self, runs, histories, artifacts=None):
        self.runs, self.histories = runs, histories
        self.artifacts = artifacts or {}  # run id -> {path: size}

    def search_runs(self, experiment_ids, run_view_type, max_results, page_token):
        return Page(self.runs)

    def get_metric_history(self, run_id, key):
        if run_id not in self.histories:
            raise MlflowException("Run not found", error_code="RESOURCE_DOES_NOT_EXIST")
        # a point is a step (its value is the step, as the writers log it) or (step, value)
        points = [p if isinstance(p, tuple) else (p, float(p)) for p in self.histories[run_id]]
        return [SimpleNamespace(step=step, value=value) for step, value in points]

    def list_artifacts(self, run_id, path):
        listed = self.artifacts.get(run_id, {})
        return [SimpleNamespace(path=p, file_size=n) for p, n in listed.items()]


def op(op_id, kind, ok=True, **write):
    return Op(op_id, 0, kind, 0.0, 1.0, ok, None if ok else "gave up", write)


def test_audit_counts_losses_and_duplicates_apart():
    ops = [
        op("w0-1", "create_run", run_id="r1"),
        op("w0-2", "log_param", run_id="r1", key="p", value="v"),
        op("w0-3", "log_metric", run_id="r1", key="m", step=3, value=3.0),
        op("w0-4", "log_metric", run_id="r1", key="m", step=4, value=4.0),
        op("w1-1", "create_run", run_id="r2"),  # acknowledged, then lost with its replica
        op("w1-2", "log_metric", run_id="r2", key="m", step=2, value=2.0),
        op("w2-1", "create_run", run_id="r3"),  # the retry of a POST that had landed
        op("w3-1", "log_param", ok=False, run_id="r1", key="q", value="x"),  # not acknowledged
    ]
    client = FakeClient(
        runs=[run("r1", "w0-1", params={"p": "v"}), run("r3", "w2-1"), run("r3b", "w2-1")],
        histories={"r1": [3, 4, 4]},
    )
    result = audit(client, "1", ops)
    assert result.acknowledged == 7
    assert result.client_failures == 1
    assert sorted(result.lost) == [
        "create_run w1-1 (run r2): the run is missing",
        "log_metric w1-2 (run r2): the run it wrote to is missing",
    ]
    assert sorted(result.duplicates) == [
        "create_run w2-1 (run r3): created 2 times",
        "log_metric w0-4 (run r1): metric m step 4 logged 2 times",
    ]


def test_audit_of_a_sound_deployment_finds_nothing():
    ops = [
        op("w0-1", "create_run", run_id="r1"),
        op("w0-2", "log_metric", run_id="r1", key="m", step=2, value=2.0),
    ]
    result = audit(FakeClient([run("r1", "w0-1")], {"r1": [2]}), "1", ops)
    assert (result.lost, result.duplicates) == ([], [])


def test_database_verifier_reports_runs_missing_from_mysql():
    db = Tables(runs=[{"run_uuid": "r1", "status": "RUNNING"}])  # r2: a replica's own SQLite
    ops = [op("w0-1", "create_run", run_id="r1"), op("w1-1", "create_run", run_id="r2")]
    client = FakeClient([run("r1", "w0-1"), run("r2", "w1-1")], {})
    result = audit(client, "1", ops, database=db)
    assert result.lost == ["create_run w1-1 (run r2): not in the runs table"]
    assert result.checked_in_db == 2


def test_experiment_aborts_when_the_steady_state_does_not_hold_and_always_rolls_back():
    rolled_back = []
    journal = Experiment(
        "broken before the fault",
        steady_state=[Probe("health", lambda: Observation(False, "HTTP 503"))],
        method=[Action("fault", lambda: rolled_back.append("fault ran"))],
        rollbacks=[Action("undo", lambda: rolled_back.append("undone"))],
    ).run()
    assert journal.status == "aborted"
    assert rolled_back == ["undone"], "the fault must not run on an unsteady system"


def test_experiment_reports_deviation_after_the_fault():
    state = {"healthy": True}
    journal = Experiment(
        "does not recover",
        steady_state=[Probe("health", lambda: Observation(state["healthy"], str(state)))],
        method=[Action("break", lambda: state.update(healthy=False))],
        recovery_timeout=0.3,
    ).run()
    assert journal.status == "completed"
    assert journal.deviated
    assert [(s.phase, s.ok) for s in journal.failures()] == [("hypothesis-after", False)]
    assert "[hypothesis-after] health: FAILED" in journal.explain()


def test_journal_keeps_the_steady_states_before_and_after_apart():
    """chaostoolkit-lib's journal shape: steady_states.before/after, run, rollbacks."""
    state = {"healthy": True}
    journal = Experiment(
        "recovers",
        steady_state=[Probe("health", lambda: Observation(state["healthy"], str(state)))],
        method=[Action("flap", lambda: state.update(healthy=True))],
        rollbacks=[Action("undo", lambda: None)],
    ).run()
    written = json.loads(journal.write(Path(tempfile.mkdtemp()) / "j.json").read_text())
    assert [s["phase"] for s in written["steady_states"]["before"]] == ["hypothesis-before"]
    assert [s["phase"] for s in written["steady_states"]["after"]] == ["hypothesis-after"]
    assert [s["name"] for s in written["run"]] == ["flap"]
    assert [s["name"] for s in written["rollbacks"]] == ["undo"]
    assert [s.phase for s in journal.steps()] == [
        "hypothesis-before",
        "method",
        "hypothesis-after",
        "rollback",
    ]


def test_audit_loses_artifacts_missing_or_truncated_in_the_listing():
    ops = [
        op("w0-1", "create_run", run_id="r1"),
        op("w0-2", "log_artifact", run_id="r1", path="chaos/a.txt", size=100, sha256="x"),
        op("w0-3", "log_artifact", run_id="r1", path="chaos/b.txt", size=100, sha256="y"),
        op("w0-4", "log_artifact", run_id="r1", path="chaos/c.txt", size=100, sha256="z"),
    ]
    client = FakeClient(
        runs=[run("r1", "w0-1")],
        histories={},
        artifacts={"r1": {"chaos/a.txt": 100, "chaos/b.txt": 37}},
    )
    result = audit(client, "1", ops)
    assert sorted(result.lost) == [
        "log_artifact w0-3 (run r1): artifact chaos/b.txt is 37 bytes, 100 were written",
        "log_artifact w0-4 (run r1): artifact chaos/c.txt not listed",
    ]


CUT = (
    "MlflowException: API request to /runs/log-parameter failed with exception "
    "('Connection broken: IncompleteRead(0 bytes read)')"
)


def test_only_connection_cuts_ending_at_a_kill_are_exempt():
    windows = [(10.0, 11.0), (30.0, 30.5)]
    during = Op("b", 0, "log_param", 9.5, 10.2, False, CUT)
    started_inside = Op("c", 0, "log_param", 30.2, 31.0, False, CUT)
    within_grace = Op("c2", 0, "log_param", 10.8, 15.5, False, CUT)
    after = Op("d", 0, "log_param", 11.5, 12.0, False, CUT)
    before = Op("e", 0, "log_param", 8.0, 9.9, False, CUT)
    # The audit's simulation: an error of another kind, and a cut retried for minutes.
    not_a_cut = Op("f", 0, "log_param", 9.5, 10.2, False, "RESOURCE_DOES_NOT_EXIST: run")
    minutes_later = Op("g", 0, "log_param", 9.5, 250.0, False, CUT)
    retried = Op(
        "h",
        0,
        "log_param",
        9.5,
        10.2,
        False,
        "MlflowException: Max retries exceeded with url (Caused by ProtocolError("
        "'Connection aborted.', RemoteDisconnected()))",
    )
    hung = Op("i", 0, "log_param", 9.5, 10.2, False, CUT, hung=True)
    assert cut_by_a_kill(during, windows)
    assert cut_by_a_kill(started_inside, windows)
    assert cut_by_a_kill(within_grace, windows)
    for op in (after, before, not_a_cut, minutes_later, retried, hung):
        assert not cut_by_a_kill(op, windows), op.id


def test_metric_with_another_value_is_lost_and_doubled_steps_are_kinded():
    ops = [
        op("w0-1", "create_run", run_id="r1"),
        op("w0-2", "log_metric", run_id="r1", key="m", step=2, value=2.0),
        op("w0-3", "log_metric", run_id="r1", key="m", step=3, value=3.0),
        op("w0-4", "log_metric", run_id="r1", key="m", step=4, value=4.0),
    ]
    client = FakeClient([run("r1", "w0-1")], {"r1": [(2, 0.0), 3, 4, 4]})
    result = audit(client, "1", ops)
    assert result.lost == ["log_metric w0-2 (run r1): metric m step 2 is [0.0], 2.0 was written"]
    assert result.duplicate_kinds == {"log_metric": 1}


def test_api_param_with_another_value_is_lost():
    ops = [
        op("w0-1", "create_run", run_id="r1"),
        op("w0-2", "log_param", run_id="r1", key="p", value="v"),
    ]
    client = FakeClient([run("r1", "w0-1", params={"p": "other"})], {})
    assert audit(client, "1", ops).lost == ["log_param w0-2 (run r1): param p is 'other'"]


class Tables:
    """MySQL as the audit reads it: rows of runs, params, tags and metrics."""

    def __init__(self, runs, params=(), tags=(), metrics=()):
        self.tables = {"runs": runs, "params": params, "tags": tags, "metrics": metrics}

    def query(self, sql, params):
        table = sql.split(" FROM ")[1].split()[0]
        return [row for row in self.tables[table] if row["run_uuid"] in params]


def test_database_verifier_reads_params_tags_and_metric_values_from_mysql():
    """The API agrees with itself (a cache, a replica's own store); MySQL does not."""
    ops = [
        op("w0-1", "create_run", run_id="r1"),
        op("w0-2", "log_param", run_id="r1", key="p", value="v"),
        op("w0-3", "set_tag", run_id="r1", key="t", value="x"),
        op("w0-4", "log_metric", run_id="r1", key="m", step=4, value=4.0),
        op("w0-5", "log_metric", run_id="r1", key="m", step=5, value=5.0),
        op("w0-6", "finish_run", run_id="r1"),
    ]
    api = FakeClient(
        [run("r1", "w0-1", params={"p": "v"}, tags={"t": "x"}, status="FINISHED")],
        {"r1": [4, 5]},
    )
    db = Tables(
        runs=[{"run_uuid": "r1", "status": "RUNNING"}],
        params=[{"run_uuid": "r1", "key": "p", "value": "v"}],
        tags=[],
        metrics=[
            {"run_uuid": "r1", "key": "m", "step": 4, "value": 4.0},
            {"run_uuid": "r1", "key": "m", "step": 5, "value": 0.5},
        ],
    )
    result = audit(api, "1", ops, database=db)
    assert sorted(result.lost) == [
        "finish_run w0-6 (run r1): status is RUNNING in MySQL",
        "log_metric w0-5 (run r1): metric m step 5 is [0.5], 5.0 was written in MySQL",
        "set_tag w0-3 (run r1): tags row t is None in MySQL",
    ]
    assert result.checked_in_db == 6


def test_audit_without_a_bucket_verifier_says_so():
    result = audit(FakeClient([], {}), "1", [])
    assert "bucket not checked (no bucket verifier" in result.summary()


def batch(op_id, run_id, step):
    return op(
        op_id,
        "log_batch",
        run_id=run_id,
        params={f"bp_{op_id}": op_id},
        tags={f"bt_{op_id}": op_id},
        metrics=[{"key": "b", "step": step, "value": step / 2}],
    )


def test_a_batch_is_audited_part_by_part_through_the_api_and_in_mysql():
    """A batch acknowledged whole must be there whole: its tag dropped through the API, or
    its metric row gone from MySQL, is a lost write named by the part that is missing."""
    ops = [op("w0-1", "create_run", run_id="r1"), batch("w0-2", "r1", 2), batch("w0-3", "r1", 3)]
    api = FakeClient(
        [
            run(
                "r1",
                "w0-1",
                params={"bp_w0-2": "w0-2", "bp_w0-3": "w0-3"},
                tags={"bt_w0-3": "w0-3"},
            )
        ],
        {"r1": [(2, 1.0), (3, 1.5)]},
    )
    db = Tables(
        runs=[{"run_uuid": "r1", "status": "RUNNING"}],
        params=[{"run_uuid": "r1", "key": f"bp_w0-{n}", "value": f"w0-{n}"} for n in (2, 3)],
        tags=[{"run_uuid": "r1", "key": f"bt_w0-{n}", "value": f"w0-{n}"} for n in (2, 3)],
        metrics=[{"run_uuid": "r1", "key": "b", "step": 2, "value": 1.0}],
    )
    through_api = audit(api, "1", ops)
    assert through_api.lost == ["log_batch w0-2 (run r1): tag bt_w0-2 is None"]
    in_mysql = audit(api, "1", ops, database=db)
    assert sorted(in_mysql.lost) == [
        "log_batch w0-2 (run r1): tag bt_w0-2 is None",
        "log_batch w0-3 (run r1): metric b step 3 missing in MySQL",
    ]


class Bucket:
    """Objects by key relative to the destination; counts its listings."""

    def __init__(self, objects):
        self.objects, self.listings = objects, []

    def digests(self, prefix=""):
        self.listings.append(prefix)
        return {k: v for k, v in self.objects.items() if k.startswith(prefix)}


def test_bucket_is_listed_once_per_experiment_and_catches_missing_or_other_bytes():
    ops = [
        op("w0-1", "create_run", run_id="r1"),
        op("w0-2", "log_artifact", run_id="r1", path="chaos/a", size=1, sha256="aa"),
        op("w1-1", "create_run", run_id="r2"),
        op("w1-2", "log_artifact", run_id="r2", path="chaos/b", size=1, sha256="bb"),
        op("w1-3", "log_artifact", run_id="r2", path="chaos/c", size=1, sha256="cc"),
    ]
    client = FakeClient(
        [run("r1", "w0-1"), run("r2", "w1-1")],
        {},
        artifacts={"r1": {"chaos/a": 1}, "r2": {"chaos/b": 1, "chaos/c": 1}},
    )
    bucket = Bucket(
        {
            "1/r1/artifacts/chaos/a": (1, "aa"),
            "1/r2/artifacts/chaos/b": (1, "xx"),  # overwritten with other bytes
            "10/r2/artifacts/chaos/c": (1, "cc"),  # another experiment's, not this one's
        }
    )
    result = audit(client, "1", ops, object_store=bucket)
    assert bucket.listings == ["1/"], "one listing for the experiment, ending in its slash"
    assert result.checked_in_bucket == 3
    assert sorted(result.lost) == [
        "log_artifact w1-2 (run r2): 1/r2/artifacts/chaos/b in the bucket has other bytes",
        "log_artifact w1-3 (run r2): 1/r2/artifacts/chaos/c not in the bucket",
    ]
