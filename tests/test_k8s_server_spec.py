"""Workers and pool settings read from a release's pod template (existing releases)."""

from __future__ import annotations

import pytest
from mlflow_acceptance.fixtures.core.database import pool_settings
from mlflow_acceptance.fixtures.k8s.server_spec import DEFAULT_WORKERS, literal_env, workers


@pytest.mark.parametrize(
    ("container", "expected"),
    [
        ({"args": ["server", "--workers=3"]}, 3),
        ({"command": ["mlflow"], "args": ["server", "--workers", "5"]}, 5),
        ({"args": ["server", "-w", "6"]}, 6),
        ({"args": ["server"], "env": [{"name": "MLFLOW_WORKERS", "value": "8"}]}, 8),
        ({"args": ["server", "--port=5000"]}, DEFAULT_WORKERS),
        ({"command": ["sh", "-c", "exec something"]}, None),
    ],
)
def test_workers_from_the_command_line_env_or_mlflows_default(container, expected):
    assert workers(container) == expected


def test_only_literal_pool_settings_are_read():
    container = {
        "env": [
            {"name": "MLFLOW_SQLALCHEMYSTORE_POOL_SIZE", "value": "10"},
            {"name": "MLFLOW_BACKEND_STORE_URI", "valueFrom": {"secretKeyRef": {"name": "db"}}},
            {"name": "MLFLOW_SERVER_ALLOWED_HOSTS", "value": "mlflow.example.com"},
        ]
    }
    env = literal_env(container)
    assert "MLFLOW_BACKEND_STORE_URI" not in env
    assert pool_settings(env) == {"MLFLOW_SQLALCHEMYSTORE_POOL_SIZE": "10"}
