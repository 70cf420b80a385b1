"""The loss audit: every write the server acknowledged must be there, exactly once.

Availability tools (LitmusChaos, Chaos Mesh) stop at "the service answered"; this reads
every acknowledged write back through the API, values included, and, where verifiers
exist, finds it in MySQL (runs, params, tags and metric rows with their values) and in the
bucket with the right SHA-256. A retried POST whose first attempt did land shows up as a
duplicate, which is counted apart from losses (by kind, for the verdict that bounds them):
a front door does not retry a request that was in flight on a killed replica, but the
client does.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from mlflow.entities import ViewType
from mlflow.exceptions import MlflowException
from mlflow_acceptance.chaos.workload import OP_TAG, Op


@dataclass
class AuditResult:
    acknowledged: int = 0
    client_failures: int = 0
    lost: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    duplicate_kinds: Counter = field(default_factory=Counter)  # op kind -> duplicated writes
    checked_in_db: int = 0
    checked_in_bucket: int = 0
    bucket_unchecked: str | None = None  # why artifacts were not found in the bucket
    lost_ops: set[str] = field(default_factory=set)  # ids of acknowledged writes not found

    def lose(self, op_id: str, finding: str) -> None:
        """Record a lost write once, however many checks (API, DB, bucket) miss it."""
        if op_id not in self.lost_ops:
            self.lost_ops.add(op_id)
            self.lost.append(finding)

    def duplicate(self, kind: str, finding: str) -> None:
        self.duplicates.append(finding)
        self.duplicate_kinds[kind] += 1

    def summary(self) -> str:
        bucket = (
            f"bucket not checked ({self.bucket_unchecked})"
            if self.bucket_unchecked
            else f"{self.checked_in_bucket} in the bucket"
        )
        return (
            f"{self.acknowledged} acknowledged writes, {len(self.lost)} lost, "
            f"{len(self.duplicates)} duplicated, {self.client_failures} client failures; "
            f"{self.checked_in_db} checked in the DB, {bucket}"
        )


def _all_runs(client, experiment_id: str) -> list[Any]:
    runs, token = [], None
    while True:
        page = client.search_runs(
            [experiment_id], run_view_type=ViewType.ALL, max_results=1000, page_token=token
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _read(call, missing):
    """A read through the API; "does not exist" means the write is gone, not an error."""
    try:
        return call()
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return missing
        raise


def audit(
    client, experiment_id: str, ops: list[Op], database=None, object_store=None
) -> AuditResult:
    acked = [op for op in ops if op.ok]
    result = AuditResult(acknowledged=len(acked), client_failures=sum(not op.ok for op in ops))
    if object_store is None:
        result.bucket_unchecked = "no bucket verifier: only the listed sizes were checked"
    runs = _all_runs(client, experiment_id)
    by_op = defaultdict(list)
    for run in runs:
        if OP_TAG in run.data.tags:
            by_op[run.data.tags[OP_TAG]].append(run)
    by_id = {run.info.run_id: run for run in runs}
    histories: dict[tuple[str, str], dict[int, list[float]]] = {}
    listings: dict[str, dict[str, int | None]] = {}
    digests: dict[str, dict[str, tuple[int, str]]] = {}

    for op in acked:
        run_id = op.write.get("run_id")
        run = by_id.get(run_id)
        where = f"{op.kind} {op.id} (run {run_id})"
        if op.kind == "create_run":
            copies = len(by_op.get(op.id, []))
            if copies == 0 or run is None:
                result.lose(op.id, f"{where}: the run is missing")
            elif copies > 1:
                result.duplicate(op.kind, f"{where}: created {copies} times")
            continue
        if run is None:
            result.lose(op.id, f"{where}: the run it wrote to is missing")
            continue
        if op.kind == "finish_run":
            if run.info.status != "FINISHED":
                result.lose(op.id, f"{where}: status is {run.info.status}, not FINISHED")
        elif op.kind == "log_artifact":
            _audit_artifact(
                client, op, run, experiment_id, listings, digests, object_store, result, where
            )
        else:
            _audit_values(client, op, run, histories, result, where)

    if database is not None:
        _audit_database(database, acked, result)
    return result


def expected(op: Op) -> list[tuple[str, str, Any]]:
    """What an acknowledged param, tag, metric or batch write must have left, as
    ("param" | "tag", key, value) and ("metric", key, (step, value))."""
    write = op.write
    if op.kind == "log_param":
        return [("param", write["key"], write["value"])]
    if op.kind == "set_tag":
        return [("tag", write["key"], write["value"])]
    if op.kind == "log_metric":
        return [("metric", write["key"], (write["step"], write["value"]))]
    if op.kind == "log_batch":
        return (
            [("param", key, value) for key, value in write["params"].items()]
            + [("tag", key, value) for key, value in write["tags"].items()]
            + [("metric", m["key"], (m["step"], m["value"])) for m in write["metrics"]]
        )
    return []


def _audit_values(client, op: Op, run, histories, result: AuditResult, where: str) -> None:
    run_id = run.info.run_id
    for kind, key, value in expected(op):
        if kind != "metric":
            held = run.data.params if kind == "param" else run.data.tags
            if (seen := held.get(key)) != value:
                result.lose(op.id, f"{where}: {kind} {key} is {seen!r}")
            continue
        if (run_id, key) not in histories:
            history = _read(lambda k=key: client.get_metric_history(run_id, k), [])
            histories[(run_id, key)] = defaultdict(list)
            for point in history:
                histories[(run_id, key)][point.step].append(point.value)
        step, written = value
        values = histories[(run_id, key)].get(step, [])
        if finding := _metric_finding(key, step, written, values):
            result.lose(op.id, f"{where}: {finding}")
        elif len(values) > 1:
            result.duplicate(
                op.kind, f"{where}: metric {key} step {step} logged {len(values)} times"
            )


def _metric_finding(key: str, step: int, written: float, values: list[float]) -> str | None:
    """Why a logged metric step is lost (missing, or not the value written); None if there."""
    if not values:
        return f"metric {key} step {step} missing"
    if written not in values:
        return f"metric {key} step {step} is {values}, {written} was written"
    return None


def _audit_artifact(
    client, op: Op, run, experiment_id, listings, digests, object_store, result, where
):
    run_id = run.info.run_id
    if run_id not in listings:
        files = _read(lambda: client.list_artifacts(run_id, "chaos"), [])
        listings[run_id] = {f.path: f.file_size for f in files}
    if op.write["path"] not in listings[run_id]:
        result.lose(op.id, f"{where}: artifact {op.write['path']} not listed")
        return
    listed_size = listings[run_id][op.write["path"]]
    if listed_size != op.write["size"]:
        result.lose(
            op.id,
            f"{where}: artifact {op.write['path']} is {listed_size} bytes, "
            f"{op.write['size']} were written",
        )
        return
    if object_store is None:
        return
    # One listing with digests for the whole experiment, not one per run: a listing's cost
    # grows with the bucket on some stores (fake-gcs-server's filesystem backend walks every
    # object), and on Kubernetes each call is an exec into a pod.
    if experiment_id not in digests:
        digests[experiment_id] = object_store.digests(f"{experiment_id}/")
    held = digests[experiment_id]
    key = f"{experiment_id}/{run_id}/artifacts/{op.write['path']}"
    result.checked_in_bucket += 1
    if key not in held:
        result.lose(op.id, f"{where}: {key} not in the bucket")
    elif held[key][1] != op.write["sha256"]:
        result.lose(op.id, f"{where}: {key} in the bucket has other bytes")


DB_CHUNK = 200  # run ids per IN (...) query


def _rows(database, sql: str, run_ids: list[str]) -> list[dict[str, Any]]:
    """``sql`` with ``{runs}`` for the run-id list, run over chunks of run ids."""
    rows: list[dict[str, Any]] = []
    for start in range(0, len(run_ids), DB_CHUNK):
        chunk = run_ids[start : start + DB_CHUNK]
        rows += database.query(sql.format(runs=",".join(["%s"] * len(chunk))), tuple(chunk))
    return rows


def _audit_database(database, acked: list[Op], result: AuditResult) -> None:
    """Each acknowledged write as MySQL holds it: the API could agree with itself over a
    cache or a replica's own store, the tables cannot."""
    written = sorted({op.write["run_id"] for op in acked if op.write.get("run_id")})
    status = {
        row["run_uuid"]: row["status"]
        for row in _rows(
            database, "SELECT run_uuid, status FROM runs WHERE run_uuid IN ({runs})", written
        )
    }
    keyed: dict[str, dict[tuple[str, str], str]] = {"params": {}, "tags": {}}
    for table in keyed:
        sql = f"SELECT run_uuid, `key`, value FROM {table} WHERE run_uuid IN ({{runs}})"  # noqa: S608
        for row in _rows(database, sql, written):
            keyed[table][(row["run_uuid"], row["key"])] = row["value"]
    metrics: dict[tuple[str, str, int], list[float]] = defaultdict(list)
    sql = "SELECT run_uuid, `key`, step, value FROM metrics WHERE run_uuid IN ({runs})"
    for row in _rows(database, sql, written):
        metrics[(row["run_uuid"], row["key"], int(row["step"]))].append(float(row["value"]))

    for op in acked:
        run_id = op.write.get("run_id")
        if run_id is None:
            continue
        where = f"{op.kind} {op.id} (run {run_id})"
        result.checked_in_db += 1
        if run_id not in status:
            result.lose(op.id, f"{where}: not in the runs table")
            continue
        if op.kind == "finish_run" and status[run_id] != "FINISHED":
            result.lose(op.id, f"{where}: status is {status[run_id]} in MySQL")
        for kind, key, value in expected(op):
            if kind == "metric":
                step, written = value
                if finding := _metric_finding(key, step, written, metrics[(run_id, key, step)]):
                    result.lose(op.id, f"{where}: {finding} in MySQL")
                continue
            table = f"{kind}s"
            if (seen := keyed[table].get((run_id, key))) != value:
                result.lose(op.id, f"{where}: {table} row {key} is {seen!r} in MySQL")


# How a connection cut mid-answer reads in a client error; neither the front door nor
# MLflow's client retries those. "Max retries exceeded" means the client did retry: not one.
CUT_CONNECTION = ("IncompleteRead", "Connection broken", "Connection aborted", "RemoteDisconnected")
CUT_GRACE_SECONDS = 5.0  # a cut call ends this soon after its replica was seen down


def cut_by_a_kill(op: Op, windows: list[tuple[float, float]]) -> bool:
    """Whether a failed call is one a kill cut: under way while a replica was being killed
    (``windows``: from the kill order until the replica was seen down), failed with a cut
    connection, and ended within seconds of the kill, not after minutes of retries."""
    error = op.error or ""
    if op.ok or op.hung or "Max retries exceeded" in error:
        return False
    if not any(fragment in error for fragment in CUT_CONNECTION):
        return False
    return any(
        op.started <= until and since <= op.ended <= until + CUT_GRACE_SECONDS
        for since, until in windows
    )
