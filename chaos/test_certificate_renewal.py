"""Certificate renewal under load: cert-manager issues the front door's certificate again
(what `cmctl renew` asks) while the writers run. Every renewal in production goes this way
every two months; the edge must take the new Secret without dropping a call (ingress-nginx
and Traefik reload it in place, a Gateway controller re-programs its listener), and the
new certificate must be the one served, chained to the same CA."""

from __future__ import annotations

import datetime as dt
import time

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from mlflow_acceptance.chaos.experiment import Action, Experiment
from mlflow_acceptance.chaos.probes import front_door_health, write_and_read_back
from mlflow_acceptance.chaos.verdicts import (
    prober_held,
    steady_state_came_back,
    writes_accounted_for,
)
from mlflow_acceptance.fixtures.core.tls import evaluate_certificate, served_certificate
from mlflow_acceptance.fixtures.core.waiting import Observation, wait_until

pytestmark = [pytest.mark.chaos, pytest.mark.disruptive]

# cert-manager issues from a CA issuer in seconds (kind: under one); an ACME issuer takes
# longer, and the edge then needs its own moment to load the Secret.
RENEWAL_TIMEOUT = 300


def test_certificate_renewal_under_load(chaos_run, deployment, measure):
    certificates = deployment.require("certificates", "no certificate issuer to renew with")
    kubernetes = deployment.kubernetes
    if kubernetes is None or not kubernetes.creates_releases:
        pytest.skip(
            f"{deployment.label}: its issuer is not the run's, and a renewal asks it for a new "
            "certificate (an ACME issuer limits how many): run it on kind, where the run "
            "made the CA issuer"
        )
    before = served_certificate(deployment.tracking_uri, deployment.ca_bundle)
    run = chaos_run("cert_renewal")
    renewed: dict[str, str] = {}

    def renew() -> str:
        started = run.mark("fault: renew the front door's certificate")
        renewed["certificate"] = certificates.renew()

        def served_anew() -> Observation:
            now = served_certificate(deployment.tracking_uri, deployment.ca_bundle)
            return Observation(
                now.serial_number != before.serial_number,
                f"serial {now.serial_number:x} (before: {before.serial_number:x})",
            )

        seen = wait_until(
            served_anew,
            timeout=RENEWAL_TIMEOUT,
            interval=2.0,
            what=f"the front door to serve the renewed {renewed['certificate']}",
        )
        measure("cert_renewal.served_after_seconds", round(time.monotonic() - started, 1))
        run.mark("recovered")
        return seen.seen

    experiment = Experiment(
        "renew the front door's certificate under load",
        [front_door_health(deployment), write_and_read_back(deployment, run.experiment_id)],
        [Action("renew, and wait until the new certificate is served", renew)],
        recovery_timeout=60,
    )
    run.start_workload()
    journal = experiment.run()
    result = run.finish(journal)

    steady_state_came_back(journal, result)
    writes_accounted_for(run, result, faults=0)
    prober_held(run, during_errors=0)  # a reload that drops connections fails here
    failed = [f"{op.kind} {op.id}: {op.error}" for op in run.ops if not op.ok]
    assert not failed, (
        f"{len(failed)} of {len(run.ops)} writes failed while {renewed['certificate']} was "
        f"renewed: {failed[:5]}"
    )
    served = served_certificate(deployment.tracking_uri, deployment.ca_bundle)
    status = certificates.status()
    problems = evaluate_certificate(
        status, dt.datetime.now(dt.UTC), served_pem=served.public_bytes(Encoding.PEM).decode()
    )
    assert not problems, f"after the renewal of {renewed['certificate']}: {problems}"
