"""The loss audit: every write the server acknowledged must be there, exactly once.

Availability tools (LitmusChaos, Chaos Mesh) stop at "the service answered"; this reads
every acknowledged write back through the API and, where verifiers exist, finds it in
MySQL and in the bucket with the right SHA-256. A retried POST whose first attempt did land
shows up as a duplicate, which is counted apart from losses: a front door does not retry
a request that was in flight on a killed replica, but the client does.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from mlflow.entities import ViewType
from mlflow.exceptions import MlflowException

from chaos.workload import OP_TAG, Op


@dataclass
class AuditResult:
    acknowledged: int = 0
    client_failures: int = 0
    lost: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)
    checked_in_db: int = 0
    checked_in_bucket: int = 0
    lost_ops: set[str] = field(default_factory=set)  # ids of acknowledged writes not found

    def lose(self, op_id: str, finding: str) -> None:
        """Record a lost write once, however many checks (API, DB, bucket) miss it."""
        if op_id not in self.lost_ops:
            self.lost_ops.add(op_id)
            self.lost.append(finding)

    def summary(self) -> str:
        return (
            f"{self.acknowledged} acknowledged writes, {len(self.lost)} lost, "
            f"{len(self.duplicates)} duplicated, {self.client_failures} client failures; "
            f"{self.checked_in_db} checked in the DB, {self.checked_in_bucket} in the bucket"
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
    runs = _all_runs(client, experiment_id)
    by_op = defaultdict(list)
    for run in runs:
        if OP_TAG in run.data.tags:
            by_op[run.data.tags[OP_TAG]].append(run)
    by_id = {run.info.run_id: run for run in runs}
    histories: dict[tuple[str, str], Counter] = {}
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
                result.duplicates.append(f"{where}: created {copies} times")
            continue
        if run is None:
            result.lose(op.id, f"{where}: the run it wrote to is missing")
            continue
        if op.kind == "log_param" and run.data.params.get(op.write["key"]) != op.write["value"]:
            result.lose(op.id, f"{where}: param {op.write['key']} missing")
        elif op.kind == "set_tag" and run.data.tags.get(op.write["key"]) != op.write["value"]:
            result.lose(op.id, f"{where}: tag {op.write['key']} missing")
        elif op.kind == "finish_run" and run.info.status != "FINISHED":
            result.lose(op.id, f"{where}: status is {run.info.status}, not FINISHED")
        elif op.kind == "log_metric":
            metric = (run_id, op.write["key"])
            if metric not in histories:
                history = _read(lambda m=metric: client.get_metric_history(*m), [])
                histories[metric] = Counter(m.step for m in history)
            seen = histories[metric][op.write["step"]]
            if seen == 0:
                result.lose(op.id, f"{where}: metric step {op.write['step']} missing")
            elif seen > 1:
                result.duplicates.append(f"{where}: metric step logged {seen} times")
        elif op.kind == "log_artifact":
            _audit_artifact(
                client, op, run, experiment_id, listings, digests, object_store, result, where
            )

    if database is not None:
        _audit_database(database, acked, result)
    return result


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
    folder = f"{experiment_id}/{run_id}/artifacts"
    if folder not in digests:  # one listing with digests per run, not two calls per object
        digests[folder] = object_store.digests(folder)
    key = f"{folder}/{op.write['path']}"
    result.checked_in_bucket += 1
    if key not in digests[folder]:
        result.lose(op.id, f"{where}: {key} not in the bucket")
    elif digests[folder][key][1] != op.write["sha256"]:
        result.lose(op.id, f"{where}: {key} in the bucket has other bytes")


def _audit_database(database, acked: list[Op], result: AuditResult) -> None:
    creators = {op.write["run_id"]: op.id for op in acked if op.kind == "create_run"}
    created = sorted(creators)
    for start in range(0, len(created), 200):
        chunk = created[start : start + 200]
        marks = ",".join(["%s"] * len(chunk))
        rows = database.query(
            f"SELECT run_uuid FROM runs WHERE run_uuid IN ({marks})",  # noqa: S608
            tuple(chunk),
        )
        present = {row["run_uuid"] for row in rows}
        result.checked_in_db += len(chunk)
        for run_id in chunk:
            if run_id not in present:
                result.lose(creators[run_id], f"create_run {run_id}: not in the runs table")


def in_flight_at_a_kill(op: Op, windows: list[tuple[float, float]]) -> bool:
    """Whether the call was under way while a replica was being killed."""
    return any(op.started <= until and op.ended >= since for since, until in windows)
