"""The server's command line per MLflow major version, and what breaks change in it."""

from __future__ import annotations

from mlflow_acceptance.fixtures.core.mlflow_api import served_requests
from mlflow_acceptance.fixtures.docker.services import ServerSettings, artifact_args, server_command
from mlflow_acceptance.fixtures.targets.local.breaks import BREAKS_DIR, parse


def settings(version: str) -> ServerSettings:
    return ServerSettings("img", version, 2, 0.5, "2g", ("127.0.0.1",), ("https://127.0.0.1",))


def test_mlflow_3_serves_with_uvicorn_and_mlflow_2_with_gunicorn_logging_access():
    three = server_command(settings("3.17.2"), artifact_args("gs://b/p"))
    assert "--uvicorn-opts=--log-level=info" in three
    two = server_command(settings("2.22.2"), artifact_args("gs://b/p"))
    assert "--gunicorn-opts=--log-level=info --access-logfile=-" in two
    assert not any("uvicorn" in arg for arg in two)  # MLflow 2 has no --uvicorn-opts


def test_both_access_log_formats_count_client_requests_only():
    uvicorn = (
        '2026/12/02 06:00:01 INFO:     10.0.0.7:5 - "POST /api/2.0/mlflow/runs/create HTTP/1.1" 200'
    )
    gunicorn = (
        "10.0.0.7 - - [02/Dec/2026:06:00:01 +0000] "
        '"GET /ajax-api/2.0/mlflow/runs/get HTTP/1.1" 200 5 "-" "x"'
    )
    probe = '10.0.0.1 - - [02/Dec/2026:06:00:02 +0000] "GET /health HTTP/1.1" 200 2 "-" "kube"'
    assert served_requests("\n".join([uvicorn, gunicorn, probe])) == 2


def test_breaks_change_the_last_replica_or_every_replica_as_declared():
    broken = parse("replica-own-db,cors-default,no-pre-ping")
    env = {
        "MLFLOW_BACKEND_STORE_URI": "mysql+pymysql://db",
        "MLFLOW_SERVER_CORS_ALLOWED_ORIGINS": "x",
    }
    first, last = broken.server_env(env, last_replica=False), broken.server_env(env, True)
    assert first["MLFLOW_BACKEND_STORE_URI"] == "mysql+pymysql://db"
    assert last["MLFLOW_BACKEND_STORE_URI"] == "sqlite:////tmp/own.db"
    assert "MLFLOW_SERVER_CORS_ALLOWED_ORIGINS" not in first
    assert first["PYTHONPATH"] == BREAKS_DIR
    assert f"{BREAKS_DIR}/sitecustomize.py" in broken.server_files()
    assert env["MLFLOW_SERVER_CORS_ALLOWED_ORIGINS"] == "x"  # the sound env is not touched


def test_artifact_breaks():
    assert parse("").artifact_args("gs://b/p", True) == artifact_args("gs://b/p")
    local = parse("replica-local-artifacts")
    assert local.artifact_args("gs://b/p", False) == artifact_args("gs://b/p")
    assert (
        local.artifact_args("gs://b/p", True)[0] == "--artifacts-destination=/tmp/local-artifacts"
    )
    assert parse("no-proxy").artifact_args("gs://b/p", False) == [
        "--no-serve-artifacts",
        "--default-artifact-root=gs://b/p",
    ]


def test_certificate_and_database_breaks():
    import datetime as dt

    assert parse("cert-other-host").certificate(("127.0.0.1",)) == (
        ("other.example.com",),
        dt.timedelta(0),
    )
    assert parse("cert-near-expiry").certificate(("127.0.0.1",))[1] == dt.timedelta(days=80)
    assert parse("small-db").db_args() == ("--max-connections=30",)
    assert parse("stale-schema").after_start_sql()[0].startswith("UPDATE alembic_version")


def test_only_stores_that_hand_out_presigned_urls_get_the_bucket_egress_proxy():
    from mlflow_acceptance.fixtures.docker.services import needs_bucket_egress

    assert needs_bucket_egress("minio")
    assert needs_bucket_egress("seaweedfs")
    assert not needs_bucket_egress("fake-gcs")
