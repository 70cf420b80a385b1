"""Run logging through the front door: experiments, runs, params, tags, metrics, search.

MLflow's own REST tests cover this on one process with SQLite; here it goes through TLS,
several replicas and MySQL. With a database verifier, the rows are checked in MySQL too.
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pymysql
import pytest
from mlflow.entities import Metric, Param, RunStatus, RunTag, ViewType
from mlflow.exceptions import MlflowException
from mlflow_acceptance.fixtures.core import mlflow_api, schema
from mlflow_acceptance.fixtures.core.database import pooled_connections_per_worker
from mlflow_acceptance.fixtures.core.mlflow_api import explain_write_failure

pytestmark = pytest.mark.acceptance

MAX_FLOAT = 1.7976931348623157e308
CONCURRENT_THREADS = 8


def now_ms() -> int:
    return int(time.time() * 1000)


# ---- experiments ----------------------------------------------------------------------------


def test_experiment_create_get_search_rename_delete_restore(deployment, client):
    name = deployment.unique_name("lifecycle")
    experiment_id = client.create_experiment(name, tags={"team": "acceptance", "kind": "x"})

    got = client.get_experiment(experiment_id)
    assert got.name == name
    assert got.tags["team"] == "acceptance"
    assert client.get_experiment_by_name(name).experiment_id == experiment_id

    by_name = client.search_experiments(filter_string=f"name = '{name}'")
    assert [e.experiment_id for e in by_name] == [experiment_id]
    by_like = client.search_experiments(filter_string=f"name LIKE '{name[:-3]}%'")
    assert experiment_id in [e.experiment_id for e in by_like]
    by_tag = client.search_experiments(
        filter_string=f"tags.team = 'acceptance' AND name = '{name}'"
    )
    assert [e.experiment_id for e in by_tag] == [experiment_id]

    renamed = name + "-renamed"
    client.rename_experiment(experiment_id, renamed)
    assert client.get_experiment(experiment_id).name == renamed
    assert client.get_experiment_by_name(name) is None, "the old name still resolves"

    client.delete_experiment(experiment_id)
    assert client.get_experiment(experiment_id).lifecycle_stage == "deleted"
    active = client.search_experiments(
        view_type=ViewType.ACTIVE_ONLY, filter_string=f"name = '{renamed}'"
    )
    assert active == [], "a deleted experiment is still listed as active"
    deleted = client.search_experiments(
        view_type=ViewType.DELETED_ONLY, filter_string=f"name = '{renamed}'"
    )
    assert [e.experiment_id for e in deleted] == [experiment_id]

    client.restore_experiment(experiment_id)
    assert client.get_experiment(experiment_id).lifecycle_stage == "active"


# ---- runs -----------------------------------------------------------------------------------


def test_run_with_params_tags_metrics_and_special_values(client, new_experiment):
    experiment_id = new_experiment("run-data")
    run = client.create_run(experiment_id, run_name="acceptance-run", tags={"stage": "train"})
    run_id = run.info.run_id
    assert run.info.run_name == "acceptance-run"
    assert run.info.status == "RUNNING"

    stamp = now_ms()
    client.log_param(run_id, "optimizer", "adam")
    client.set_tag(run_id, "dataset", "iris")
    client.log_metric(run_id, "loss", 0.5, timestamp=stamp, step=3)
    client.log_batch(
        run_id,
        metrics=[
            Metric("nan_metric", float("nan"), stamp, 0),
            Metric("pos_inf", float("inf"), stamp, 0),
            Metric("neg_inf", float("-inf"), stamp, 0),
            Metric("accuracy", 0.9, stamp + 1, 1),
        ],
        params=[Param("batch_size", "32"), Param("empty", "")],
        tags=[RunTag("owner", "suite")],
    )
    client.set_terminated(run_id, status="FINISHED")

    data = client.get_run(run_id).data
    assert data.params == {"optimizer": "adam", "batch_size": "32", "empty": ""}
    assert data.tags["dataset"] == "iris"
    assert data.tags["owner"] == "suite"
    assert data.tags["stage"] == "train"
    assert data.metrics["loss"] == 0.5
    assert data.metrics["accuracy"] == 0.9
    assert math.isnan(data.metrics["nan_metric"]), data.metrics["nan_metric"]
    assert data.metrics["pos_inf"] >= MAX_FLOAT, data.metrics["pos_inf"]
    assert data.metrics["neg_inf"] <= -MAX_FLOAT, data.metrics["neg_inf"]
    (loss,) = client.get_metric_history(run_id, "loss")
    assert (loss.step, loss.timestamp, loss.value) == (3, stamp, 0.5)

    info = client.get_run(run_id).info
    assert info.status == "FINISHED"
    assert info.end_time is not None
    assert info.end_time >= info.start_time


def test_failed_run_records_status_and_end_time(client, new_experiment):
    run = client.create_run(new_experiment("failed-run"))
    client.set_terminated(run.info.run_id, status=RunStatus.to_string(RunStatus.FAILED))
    info = client.get_run(run.info.run_id).info
    assert info.status == "FAILED"
    assert info.end_time is not None
    assert info.end_time >= info.start_time


def test_search_runs_with_metric_and_param_filters_and_order(client, new_experiment):
    experiment_id = new_experiment("search")
    ids = []
    for i in range(6):
        run = client.create_run(experiment_id, run_name=f"r{i}")
        client.log_batch(
            run.info.run_id,
            metrics=[Metric("score", float(i), now_ms(), 0)],
            params=[Param("parity", str(i % 2))],
        )
        ids.append(run.info.run_id)

    high = client.search_runs([experiment_id], filter_string="metrics.score > 3")
    assert sorted(r.info.run_id for r in high) == sorted(ids[4:])
    odd = client.search_runs([experiment_id], filter_string="params.parity = '1'")
    assert sorted(r.info.run_id for r in odd) == sorted(ids[1::2])
    ordered = client.search_runs([experiment_id], order_by=["metrics.score DESC"])
    assert [r.info.run_id for r in ordered] == ids[::-1]

    first = client.search_runs([experiment_id], max_results=4, order_by=["metrics.score ASC"])
    assert first.token, "a page of 4 out of 6 runs has no next-page token"
    second = client.search_runs(
        [experiment_id], max_results=4, order_by=["metrics.score ASC"], page_token=first.token
    )
    assert [r.info.run_id for r in first] + [r.info.run_id for r in second] == ids
    assert not second.token


def test_metric_history_comes_back_in_step_order_and_paginates(deployment, client, new_experiment):
    run_id = client.create_run(new_experiment("history")).info.run_id
    base = now_ms()
    steps = list(range(25))
    random.Random(7).shuffle(steps)
    for chunk in (steps[:10], steps[10:]):
        client.log_batch(run_id, metrics=[Metric("curve", s / 10, base + s, s) for s in chunk])

    history = client.get_metric_history(run_id, "curve")
    assert [m.step for m in history] == list(range(25))
    assert [m.value for m in history] == [s / 10 for s in range(25)]

    pages, token = [], None
    for _ in range(10):
        params = {"run_id": run_id, "metric_key": "curve", "max_results": 10}
        if token:
            params["page_token"] = token
        response = deployment.http.get(mlflow_api.METRIC_HISTORY, params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        pages.append([m["step"] for m in body.get("metrics", [])])
        token = body.get("next_page_token")
        if not token:
            break
    assert [len(p) for p in pages] == [10, 10, 5], pages
    assert sorted(s for p in pages for s in p) == list(range(25)), "pages overlap or miss steps"


@pytest.mark.parametrize(
    ("endpoint", "payload", "status", "error_code"),
    [
        (
            "runs/log-metric",
            {"run_id": "x", "value": 1.0, "timestamp": 1},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        (
            "runs/log-metric",
            {"run_id": "0" * 32, "key": "k", "value": 1.0, "timestamp": 1, "step": 0},
            404,
            "RESOURCE_DOES_NOT_EXIST",
        ),
        (
            "runs/log-batch",
            {"run_id": "0" * 32, "metrics": "not-a-list"},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
        ("experiments/create", {"name": 123}, 400, "INVALID_PARAMETER_VALUE"),
        (
            "runs/search",
            {"experiment_ids": ["0"], "max_results": 123456789},
            400,
            "INVALID_PARAMETER_VALUE",
        ),
    ],
)
def test_validation_errors_are_4xx_with_mlflow_error_code(
    deployment, endpoint, payload, status, error_code
):
    response = deployment.http.post(f"{mlflow_api.API}/{endpoint}", json=payload)
    assert response.status_code == status, (
        f"POST {endpoint} {payload}: expected HTTP {status} {error_code}, got "
        f"{response.status_code}: {response.text[:300]}"
    )
    assert response.json().get("error_code") == error_code, response.text[:300]


def test_duplicate_experiment_name_is_refused(deployment, client):
    name = deployment.unique_name("duplicate")
    client.create_experiment(name)
    with pytest.raises(MlflowException) as caught:
        client.create_experiment(name)
    assert caught.value.error_code == "RESOURCE_ALREADY_EXISTS", caught.value


# ---- concurrency ------------------------------------------------------------------------------


def test_concurrent_writers_lose_and_duplicate_nothing(
    client, new_experiment, measure, monkeypatch
):
    """Threads log to their own runs and to one shared run at once; afterwards every
    acknowledged metric, param and tag is there exactly once. The client does not retry
    here: a 500 from a deadlock or an exhausted pool under concurrency is the failure."""
    experiment_id = new_experiment("concurrency")
    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
    try:
        shared = client.create_run(experiment_id, run_name="shared").info.run_id
    except MlflowException as exc:
        pytest.fail(f"creating the shared run failed: {explain_write_failure(exc)}")
    acknowledged: list[tuple[str, str, str, object]] = []  # (run, kind, key, value/step)
    lock = threading.Lock()
    steps = 15

    def writer(index: int) -> str:
        own = client.create_run(experiment_id, run_name=f"writer-{index}").info.run_id
        for step in range(steps):
            for run_id in (own, shared):
                client.log_metric(run_id, f"m{index}", float(step), timestamp=now_ms(), step=step)
                with lock:
                    acknowledged.append((run_id, "metric", f"m{index}", step))
        for j in range(3):
            for run_id in (own, shared):
                client.log_param(run_id, f"p{index}_{j}", f"v{j}")
                client.set_tag(run_id, f"t{index}_{j}", f"v{j}")
                with lock:
                    acknowledged.append((run_id, "param", f"p{index}_{j}", f"v{j}"))
                    acknowledged.append((run_id, "tag", f"t{index}_{j}", f"v{j}"))
        return own

    started = time.monotonic()
    try:
        with ThreadPoolExecutor(CONCURRENT_THREADS) as pool:
            list(pool.map(writer, range(CONCURRENT_THREADS)))
    except MlflowException as exc:
        pytest.fail(f"a concurrent write failed: {explain_write_failure(exc)}")
    measure("run_logging.concurrent_writes", len(acknowledged))
    measure("run_logging.concurrent_seconds", round(time.monotonic() - started, 1))

    problems = []
    runs = {run for run, *_ in acknowledged}
    for run_id in runs:
        try:
            data = client.get_run(run_id).data
        except MlflowException as exc:
            pytest.fail(f"reading back run {run_id} failed: {explain_write_failure(exc)}")
        mine = [a for a in acknowledged if a[0] == run_id]
        for _, kind, key, value in mine:
            if kind == "param" and data.params.get(key) != value:
                problems.append(f"{run_id} param {key}: {data.params.get(key)!r} != {value!r}")
            if kind == "tag" and data.tags.get(key) != value:
                problems.append(f"{run_id} tag {key}: {data.tags.get(key)!r} != {value!r}")
        for key in {a[2] for a in mine if a[1] == "metric"}:
            logged = sorted(m.step for m in client.get_metric_history(run_id, key))
            expected = sorted(a[3] for a in mine if a[1] == "metric" and a[2] == key)
            if logged != expected:
                problems.append(f"{run_id} metric {key}: steps {logged} != acknowledged {expected}")
    assert not problems, f"{len(problems)} mismatches, first ones: {problems[:5]}"


# ---- the database behind the API --------------------------------------------------------------


def test_rows_land_in_mysql(deployment, client, new_experiment):
    db = deployment.require("database", "cannot read the tracking database")
    experiment_id = new_experiment("rows")
    run_id = client.create_run(experiment_id).info.run_id
    client.log_batch(
        run_id,
        metrics=[Metric("rmse", 0.25, now_ms(), s) for s in range(3)],
        params=[Param("alpha", "0.1")],
        tags=[RunTag("checked", "db")],
    )
    (run,) = db.query("SELECT experiment_id, status FROM runs WHERE run_uuid = %s", (run_id,))
    assert str(run["experiment_id"]) == experiment_id
    metrics = db.query(
        "SELECT step, value FROM metrics WHERE run_uuid = %s AND `key` = 'rmse' ORDER BY step",
        (run_id,),
    )
    assert [(m["step"], m["value"]) for m in metrics] == [(0, 0.25), (1, 0.25), (2, 0.25)]
    params = db.query("SELECT `key`, value FROM params WHERE run_uuid = %s", (run_id,))
    assert params == [{"key": "alpha", "value": "0.1"}]
    tags = db.query("SELECT value FROM tags WHERE run_uuid = %s AND `key` = 'checked'", (run_id,))
    assert tags == [{"value": "db"}]


# Four-byte UTF-8 (an emoji, a CJK extension B ideograph) beside two- and three-byte text:
# a utf8mb3 (MySQL's old "utf8") or latin1 database refuses or mangles the first two.
BEYOND_THE_BMP = "rocket \U0001f680 \U00020000 naïve 漢字"
CHARSET_ADVICE = (
    "the tracking database's character set is not utf8mb4: create it with "
    "CHARACTER SET utf8mb4 (Cloud SQL: the database's charset flag)"
)


def test_text_beyond_the_bmp_round_trips(deployment, client, new_experiment):
    """Names, params and tags in any language, emoji included, come back as written, and
    are stored as written where the database can be read."""
    experiment_id = new_experiment("unicode")
    try:
        run = client.create_run(experiment_id, run_name=BEYOND_THE_BMP)
        client.log_param(run.info.run_id, "note", BEYOND_THE_BMP)
        client.set_tag(run.info.run_id, "note", BEYOND_THE_BMP)
    except MlflowException as exc:
        pytest.fail(
            f"writing {BEYOND_THE_BMP!r} failed ({explain_write_failure(exc)}): {CHARSET_ADVICE}"
        )
    data = client.get_run(run.info.run_id).data
    seen = {
        "run name": data.tags.get("mlflow.runName"),
        "param": data.params.get("note"),
        "tag": data.tags.get("note"),
    }
    mangled = {what: value for what, value in seen.items() if value != BEYOND_THE_BMP}
    assert not mangled, f"wrote {BEYOND_THE_BMP!r}, read back {mangled}: {CHARSET_ADVICE}"
    db = deployment.database
    if db is None:
        return  # the API round trip above is the check; MySQL is read where it can be
    stored = db.query(
        "SELECT value FROM params WHERE run_uuid = %s AND `key` = 'note'", (run.info.run_id,)
    )
    assert stored == [{"value": BEYOND_THE_BMP}], (
        f"MySQL holds {stored} for a param written as {BEYOND_THE_BMP!r}: {CHARSET_ADVICE}"
    )


CASE_ADVICE = (
    "the tracking database compares keys case-insensitively (MySQL's default utf8mb4 "
    "collations): create it with COLLATE utf8mb4_bin (Cloud SQL: --collation=utf8mb4_bin)"
)


@pytest.mark.hardening  # Cloud SQL's and MySQL's default collations are case-insensitive
def test_keys_differing_only_in_case_are_distinct(client, new_experiment):
    """MLflow's keys are case-sensitive ("LR" and "lr" are two params), as on SQLite and
    PostgreSQL; under a case-insensitive collation the second one collides with the first."""
    experiment_id = new_experiment("case-keys")
    run_id = client.create_run(experiment_id).info.run_id
    try:
        client.log_batch(
            run_id,
            metrics=[Metric("Loss", 1.0, 0, 0), Metric("loss", 2.0, 0, 0)],
            params=[Param("LR", "0.1"), Param("lr", "0.2")],
            tags=[RunTag("Team", "a"), RunTag("team", "b")],
        )
        client.set_experiment_tag(experiment_id, "Owner", "a")
        client.set_experiment_tag(experiment_id, "owner", "b")
    except MlflowException as exc:
        pytest.fail(
            f"keys differing only in case were refused ({explain_write_failure(exc)}): "
            f"{CASE_ADVICE}"
        )
    data = client.get_run(run_id).data
    seen = {
        "params": {k: data.params.get(k) for k in ("LR", "lr")},
        "metrics": {k: data.metrics.get(k) for k in ("Loss", "loss")},
        "tags": {k: data.tags.get(k) for k in ("Team", "team")},
        "experiment tags": {
            k: client.get_experiment(experiment_id).tags.get(k) for k in ("Owner", "owner")
        },
    }
    expected = {
        "params": {"LR": "0.1", "lr": "0.2"},
        "metrics": {"Loss": 1.0, "loss": 2.0},
        "tags": {"Team": "a", "team": "b"},
        "experiment tags": {"Owner": "a", "owner": "b"},
    }
    assert seen == expected, f"wrote {expected}, read back {seen}: {CASE_ADVICE}"


def test_schema_is_at_the_head_this_mlflow_expects(deployment):
    """The schema is at the head of the server's own MLflow version, whatever the client's."""
    db = deployment.require("database", "cannot read alembic_version")
    head = schema.head_for(deployment.expected_version)
    found = db.alembic_revision()
    assert found == head, (
        f"alembic_version is {found}, MLflow {deployment.expected_version} "
        f"expects {head}: the migration did not run or ran for another version"
    )


def test_server_connections_fit_max_connections(deployment, measure):
    """Under a burst of concurrent requests, the servers' open DB connections stay well
    below max_connections; each worker's pool may open up to pool_size + max_overflow."""
    db = deployment.require("database", "cannot count DB connections")
    if not db.sees_all_sessions():
        pytest.skip(
            f"the DB user of --db-dsn cannot see {db.server_user}'s sessions "
            "(needs the PROCESS privilege)"
        )
    max_connections = db.max_connections()
    stop = threading.Event()
    peak = [db.server_connections()]

    answers: Counter[int] = Counter()
    lock = threading.Lock()

    def burst() -> None:
        # Plain HTTP with timeouts: the client's retries could block for minutes when the
        # database refuses connections, and this must stay bounded.
        while not stop.is_set():
            response = deployment.http.post(
                mlflow_api.SEARCH_EXPERIMENTS, json={"max_results": 5}, timeout=(5, 30)
            )
            with lock:
                answers[response.status_code] += 1

    with ThreadPoolExecutor(16) as pool:
        futures = [pool.submit(burst) for _ in range(16)]
        try:
            deadline = time.monotonic() + 8
            while time.monotonic() < deadline:
                try:
                    peak.append(db.server_connections())
                except pymysql.err.OperationalError as exc:
                    # The database turning this verifier away is the exhaustion itself.
                    pytest.fail(f"the database refused a connection under load: {exc}")
        finally:
            stop.set()
        for future in futures:
            future.result()
    measure("run_logging.db_connections_peak", max(peak))
    measure("run_logging.db_max_connections", max_connections)
    bound = int(max_connections * 0.8)
    assert max(peak) <= bound, (
        f"the servers held {max(peak)} DB connections under load; the bound is 80% of "
        f"max_connections={max_connections}: lower MLFLOW_SQLALCHEMYSTORE_POOL_SIZE/"
        "MAX_OVERFLOW, workers or replicas, or raise max_connections"
    )
    # A server that answers errors fast holds few connections: the peak above then means
    # nothing, so the burst itself must have been served.
    errors = {code: n for code, n in answers.items() if code != 200}
    assert not errors, f"the burst's searches were not all served: {answers[200]} OK, {errors}"
    assert answers[200], "the burst sent no search that was answered"
    worst_case, finding = pool_ceiling(deployment, max_connections)
    if worst_case is not None:
        measure("run_logging.db_connections_worst_case", worst_case)
    assert finding is None, finding


def pool_ceiling(deployment, max_connections: int) -> tuple[int | None, str | None]:
    """The most connections the servers' pools may open at the replica ceiling (None when
    replicas or workers are unknown), and why that exceeds max_connections, if it does."""
    replicas = deployment.replica_ceiling()  # under autoscaling: its maxReplicas
    if not (replicas and deployment.server_workers):
        return None, None
    per_worker, how = pooled_connections_per_worker(deployment.server_db_pool)
    worst_case = replicas * deployment.server_workers * per_worker
    if worst_case <= max_connections:
        return worst_case, None
    return worst_case, (
        f"{replicas} replicas (at most) x {deployment.server_workers} workers x "
        f"{per_worker} pooled connections [{how}] = {worst_case} exceeds "
        f"max_connections={max_connections}: at the replica ceiling the database would "
        "refuse connections; lower MLFLOW_SQLALCHEMYSTORE_POOL_SIZE/MAX_OVERFLOW, workers or "
        "maxReplicas, or raise max_connections"
    )


def test_idle_connections_closed_by_the_database_are_replaced(deployment, client, measure):
    """The DB closes connections idle past wait_timeout (or a NAT forgets them); the next
    request must still work (MLflow's pool pre-ping), not fail with 'MySQL server has gone
    away'. A database the run made gets a 3 s wait_timeout; on a shared one whose DSN user
    is the server's own, the server's sessions are KILLed instead, which any user may do to
    its own and which the pool meets the same way."""
    db = deployment.require("database", "cannot close the server's DB connections")
    if db.admin:
        close_by_wait_timeout(db, client, measure)
    elif db.is_server_user:
        for _ in range(20):
            client.search_experiments(max_results=1)
        killed = measure("run_logging.idle_sessions_killed", db.kill_server_sessions())
        assert killed, "the servers held no DB session after 20 requests: nothing to close"
    else:
        pytest.skip(
            f"{deployment.label}: the database verifier may neither change wait_timeout (a "
            "database the run made) nor KILL the server's sessions (give a DSN of the "
            "server's own DB user)"
        )
    # Plain HTTP, no client retries: a retry would hide the failure being looked for.
    answers = [
        deployment.http.post(mlflow_api.SEARCH_EXPERIMENTS, json={"max_results": 1})
        for _ in range(10)
    ]
    failures = [f"{a.status_code}: {a.text[:200]}" for a in answers if a.status_code != 200]
    assert not failures, f"requests after the idle disconnect failed: {failures[:3]}"


def close_by_wait_timeout(db, client, measure) -> None:
    """Give the servers connections with a 3 s wait_timeout, and wait until the database
    closed them all; the global setting is restored afterwards."""
    from mlflow_acceptance.fixtures.core.waiting import Observation, wait_until

    previous = int(db.query("SELECT @@GLOBAL.wait_timeout AS t")[0]["t"])
    idle_timeout = 3
    db.query(f"SET GLOBAL wait_timeout = {idle_timeout}")
    try:
        # Replace the pooled connections with ones that inherit the short timeout.
        db.kill_server_sessions()
        for _ in range(20):
            client.search_experiments(max_results=1)
        sessions = db.session_ids(db.server_user)
        assert sessions, "the servers hold no DB connection after 20 requests"

        def idle_ones_closed() -> Observation:
            left = sessions & db.session_ids()
            return Observation(not left, f"{len(left)} of {len(sessions)} still open")

        started = time.monotonic()
        wait_until(
            idle_ones_closed,
            timeout=idle_timeout + 30,
            interval=1,
            what="the database to close the idle server connections",
        )
        measure("run_logging.idle_close_seconds", round(time.monotonic() - started, 1))
    finally:
        db.query(f"SET GLOBAL wait_timeout = {previous}")


def test_run_terminated_by_default_deleted_and_restored(client, new_experiment):
    """set_terminated's defaults (FINISHED, an end time) and the run lifecycle that the UI's
    trash relies on: a deleted run leaves active searches and comes back when restored."""
    experiment_id = new_experiment("lifecycle")
    run_id = client.create_run(experiment_id).info.run_id
    client.set_terminated(run_id)
    ended = client.get_run(run_id).info
    assert ended.status == "FINISHED", f"set_terminated() left status {ended.status}"
    assert ended.end_time, "set_terminated() left no end time"
    assert ended.end_time >= ended.start_time, (
        f"end time {ended.end_time} is before the start {ended.start_time}"
    )

    def active() -> list[str]:
        return [r.info.run_id for r in client.search_runs([experiment_id])]

    client.delete_run(run_id)
    assert client.get_run(run_id).info.lifecycle_stage == "deleted"
    assert run_id not in active(), "a deleted run is still in an active-only search"
    deleted = client.search_runs([experiment_id], run_view_type=ViewType.DELETED_ONLY)
    assert [r.info.run_id for r in deleted] == [run_id]
    client.restore_run(run_id)
    assert client.get_run(run_id).info.lifecycle_stage == "active"
    assert active() == [run_id], "a restored run is not back in the active search"


PAGINATION_ITEMS, PAGE_SIZE = 5, 2


def test_search_pages_through_experiments_and_runs_without_loss_or_repeat(
    deployment, client, new_experiment
):
    """The UI and clients page with tokens: every item once, over ceil(5 / 2) pages."""
    stem = deployment.unique_name("pages")
    made = sorted(client.create_experiment(f"{stem}-{i}") for i in range(PAGINATION_ITEMS))
    pages = mlflow_api.every_page(
        client.search_experiments,
        PAGINATION_ITEMS,
        max_results=PAGE_SIZE,
        filter_string=f"name LIKE '{stem}-%'",
    )
    seen = [e.experiment_id for page in pages for e in page]
    assert sorted(seen) == made, f"experiment pages held {seen}, {made} were created"
    assert [len(p) for p in pages] == [2, 2, 1], f"page sizes {[len(p) for p in pages]}"

    experiment_id = new_experiment("run-pages")
    runs = sorted(client.create_run(experiment_id).info.run_id for _ in range(PAGINATION_ITEMS))
    pages = mlflow_api.every_page(
        client.search_runs, PAGINATION_ITEMS, experiment_ids=[experiment_id], max_results=PAGE_SIZE
    )
    seen = [r.info.run_id for page in pages for r in page]
    assert sorted(seen) == runs, f"run pages held {seen}, {runs} were created"
