"""Shared fixtures of the acceptance suites: an MLflow client and prefixed experiments."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def client(deployment):
    """The MLflow client as a user configures it: tracking URI and CA bundle, nothing else."""
    return deployment.mlflow_client()


@pytest.fixture
def new_experiment(deployment, client):
    """Create an experiment named with this run's prefix; the janitor removes it at the end."""

    def create(what: str, **tags: str) -> str:
        return client.create_experiment(deployment.unique_name(what), tags=tags or None)

    return create
