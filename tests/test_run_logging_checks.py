"""The idle-connection check on a shared database: with the server's own DB user (no admin
rights), the server's sessions are KILLed and the next plain calls must still succeed."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from mlflow_acceptance.suites import test_run_logging as checks


class SharedDatabase:
    admin = False

    def __init__(self, server_user: bool, sessions: int = 4) -> None:
        self.is_server_user = server_user
        self.sessions = sessions

    def kill_server_sessions(self) -> int:
        killed, self.sessions = self.sessions, 0
        return killed


class Client:
    def search_experiments(self, max_results):
        return []


def deployment(db, status: int):
    answer = SimpleNamespace(status_code=status, text="MySQL server has gone away")
    http = SimpleNamespace(post=lambda path, json: answer)
    return SimpleNamespace(label="shared deployment", require=lambda capability, why: db, http=http)


def measure(name, value):
    return value


def test_killed_sessions_replaced_by_the_pool_pass():
    checks.test_idle_connections_closed_by_the_database_are_replaced(
        deployment(SharedDatabase(server_user=True), 200), Client(), measure
    )


def test_killed_sessions_not_replaced_fail():
    """What a pool without pre-ping does: the first calls after the kill meet dead sockets."""
    with pytest.raises(AssertionError, match="requests after the idle disconnect failed"):
        checks.test_idle_connections_closed_by_the_database_are_replaced(
            deployment(SharedDatabase(server_user=True), 500), Client(), measure
        )


def test_no_session_to_kill_fails_rather_than_passing():
    with pytest.raises(AssertionError, match="nothing to close"):
        checks.test_idle_connections_closed_by_the_database_are_replaced(
            deployment(SharedDatabase(server_user=True, sessions=0), 200), Client(), measure
        )


def test_another_user_without_rights_skips_saying_what_to_give():
    with pytest.raises(pytest.skip.Exception, match="server's own DB user"):
        checks.test_idle_connections_closed_by_the_database_are_replaced(
            deployment(SharedDatabase(server_user=False), 200), Client(), measure
        )


def sized(workers=2, replicas=2, pool=None):
    return SimpleNamespace(
        replica_ceiling=lambda: replicas, server_workers=workers, server_db_pool=pool
    )


def test_pool_ceiling_counts_both_engines_of_every_worker():
    """Each worker pools for the tracking store and the registry apart: 2 x (5 + 10)."""
    assert checks.pool_ceiling(sized(pool={}), 151) == (120, None)
    # 2 x 2 x 30 = 120 > 100: the old count (one engine, 60) passed this database
    worst, finding = checks.pool_ceiling(sized(pool={}), 100)
    assert worst == 120
    assert "2 engines (tracking, registry) x (5 pool + 10 overflow)" in finding


def test_pool_ceiling_reads_the_servers_pool_settings():
    pool = {"MLFLOW_SQLALCHEMYSTORE_POOL_SIZE": "20", "MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW": "0"}
    worst, finding = checks.pool_ceiling(sized(replicas=5, pool=pool), 500)
    assert worst == 5 * 2 * 2 * (20 + 10)  # MLflow passes an overflow of 0 as the default
    assert "exceeds max_connections=500" in finding
    unknown = checks.pool_ceiling(sized(pool=None), 100)[1]
    assert "the server's environment is not visible" in unknown
    assert checks.pool_ceiling(sized(workers=None), 1) == (None, None)
