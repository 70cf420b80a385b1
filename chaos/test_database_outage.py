"""Database outages under write load: MySQL restarted mid-load, crashed (SIGKILL) mid-load,
paused past the pool's pre-ping (a network that drops packets, not one that refuses them),
and the server's sessions killed. Expect clean errors or retries during, no call hanging
past a bound, full recovery, every acknowledged write still there (after a crash: only
what the database made durable survives) and no stale-connection errors afterwards
(MLflow's pool pre-pings its connections)."""

from __future__ import annotations

import pytest
from mlflow_acceptance.chaos.experiment import Action, Experiment, Journal, Probe
from mlflow_acceptance.chaos.probes import front_door_health, wait_seconds, write_and_read_back
from mlflow_acceptance.chaos.verdicts import (
    no_call_longer_than,
    prober_held,
    recovered_within,
    steady_state_came_back,
    writes_accounted_for,
)
from mlflow_acceptance.fixtures.core.waiting import Observation, wait_until

pytestmark = [pytest.mark.chaos, pytest.mark.disruptive]

HANG_BOUND_SECONDS = 90  # no client call may take longer, retries included
RECOVERY_BOUND_SECONDS = 60
# Longer than the pool's pre-ping can notice (its SELECT 1 waits on a silent socket, and
# pymysql's connect timeout is 10 s): calls wait it out; none may hang past the bound.
PAUSE_SECONDS = 20


def database_answers(deployment) -> list[Probe]:
    if deployment.database is None:
        return []

    def check() -> Observation:
        return Observation(True, f"database answers: {deployment.database.ping()}")

    return [Probe("the database answers", check)]


def steady_state(deployment, run) -> list[Probe]:
    return [
        front_door_health(deployment),
        write_and_read_back(deployment, run.experiment_id),
        *database_answers(deployment),
    ]


def outage(deployment, run, title: str, action: str, fault) -> Journal:
    """Run one database fault as an experiment around the shared steady state."""
    return Experiment(
        title,
        steady_state(deployment, run),
        [Action(action, fault)],
        recovery_timeout=RECOVERY_BOUND_SECONDS,
    ).run()


def wait_writable(deployment, run) -> None:
    probe = write_and_read_back(deployment, run.experiment_id)
    wait_until(
        probe.check, timeout=RECOVERY_BOUND_SECONDS, interval=1, what="a run to be writable again"
    )


def verdict(run, journal, result) -> None:
    steady_state_came_back(journal, result)
    recovered_within(
        run.values["recovery_seconds"], RECOVERY_BOUND_SECONDS, "runs were writable again"
    )
    writes_accounted_for(run, result, faults=1)
    prober_held(run, during_errors=None)  # the database is down: raw errors are measured
    no_call_longer_than(run, HANG_BOUND_SECONDS)
    stale = run.failures_after(run.recovered_at)
    assert not stale, f"calls failed after recovery (stale connections?): {stale[:5]}"


def down_and_back(chaos_run, deployment, name: str, what: str, fault) -> None:
    """One experiment: ``fault`` takes the database down and it comes back by itself."""
    run = chaos_run(name)
    run.start_workload()

    def act() -> None:
        run.mark(f"fault: {what}")
        fault()
        wait_writable(deployment, run)
        run.mark("recovered")

    journal = outage(deployment, run, f"{what} under write load", what, act)
    verdict(run, journal, run.finish(journal))


def test_database_restart_mid_load(chaos_run, deployment):
    faults = deployment.require("faults", "cannot restart the database (managed or shared)")
    down_and_back(
        chaos_run, deployment, "db_restart", "restart MySQL", lambda: faults.restart("database")
    )


def test_database_crash_mid_load(chaos_run, deployment):
    """Durability: MySQL SIGKILLed under write load keeps every write it acknowledged
    (innodb_flush_log_at_trx_commit=1, as Cloud SQL runs it)."""
    faults = deployment.require("faults", "cannot crash the database (managed or shared)")
    down_and_back(
        chaos_run, deployment, "db_crash", "SIGKILL MySQL", lambda: faults.crash("database")
    )


def test_database_pause_past_the_pre_ping(chaos_run, deployment, measure):
    """The database stops answering without closing anything (a dropped network path):
    calls wait and then complete, or fail cleanly; none hangs past the bound."""
    faults = deployment.require("faults", "cannot pause the database (managed or shared)")
    run = chaos_run("db_pause")
    run.start_workload()

    def pause() -> None:
        run.mark("fault: pause MySQL")
        faults.pause("database")
        try:
            wait_seconds(PAUSE_SECONDS)
        finally:
            faults.unpause("database")
        run.mark("unpaused")
        wait_writable(deployment, run)
        run.mark("recovered")

    experiment = Experiment(
        "pause MySQL under write load",
        steady_state(deployment, run),
        [Action(f"pause the database for {PAUSE_SECONDS}s", pause)],
        rollbacks=[Action("unpause the database", lambda: faults.unpause("database"))],
        recovery_timeout=RECOVERY_BOUND_SECONDS,
    )
    journal = experiment.run()
    result = run.finish(journal)
    verdict(run, journal, result)
    measure("db_pause.seconds", PAUSE_SECONDS)


def test_server_db_sessions_killed(chaos_run, deployment, measure):
    faults = deployment.require("faults", "cannot kill DB sessions (managed or shared)")
    run = chaos_run("db_sessions_killed")
    run.start_workload()

    def kill() -> int:
        run.mark("fault: KILL the server's DB sessions")
        killed = faults.kill_server_db_sessions()
        wait_writable(deployment, run)
        run.mark("recovered")
        return killed

    journal = outage(
        deployment, run, "KILL the server's DB sessions under write load", "kill sessions", kill
    )
    result = run.finish(journal)
    measure("db_sessions_killed.sessions", journal.outputs.get("kill sessions"))
    verdict(run, journal, result)
    assert journal.outputs.get("kill sessions"), "no server session was there to kill"
