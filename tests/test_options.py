"""Options: flags win over MLFLOW_ACC_* variables, defaults fill the rest, bad input is one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from fixtures.errors import SetupError
from fixtures.options import SPECS, Options, parse_bucket, resolve


def test_defaults_describe_the_local_target():
    options = resolve({}, environ={})
    assert options == Options(object_store="fake-gcs", reports_dir=Path("reports"))


def test_flag_wins_over_environment():
    options = resolve({"replicas": "3"}, environ={"MLFLOW_ACC_REPLICAS": "5"})
    assert options.replicas == 3


def test_environment_fills_in_missing_flags():
    env = {
        "MLFLOW_ACC_TARGET": "external",
        "MLFLOW_ACC_TRACKING_URI": "https://mlflow.example.com",
        "MLFLOW_ACC_OFFLINE": "yes",
        "MLFLOW_ACC_REPLICA_CPUS": "0.25",
    }
    options = resolve({}, environ=env)
    assert options.target == "external"
    assert options.tracking_uri == "https://mlflow.example.com"
    assert options.offline is True
    assert options.replica_cpus == 0.25
    assert options.object_store is None  # external: no store unless given


def test_every_option_has_a_flag_and_an_env_var():
    for spec in SPECS:
        assert spec.flag == "--" + spec.name.replace("_", "-")
        assert spec.env == "MLFLOW_ACC_" + spec.name.upper()
        assert hasattr(Options(), spec.name), spec.name


@pytest.mark.parametrize(
    ("flags", "env", "expected"),
    [
        ({"target": "nope"}, {}, "--target='nope' is not one of local, external, kind, gke"),
        ({}, {"MLFLOW_ACC_TARGET": "prod"}, "MLFLOW_ACC_TARGET='prod' is not one of"),
        ({"replicas": "two"}, {}, "--replicas='two' is not a whole number"),
        ({"replicas": "0"}, {}, "--replicas=0 must be at least 1"),
        ({"replica_cpus": "-1"}, {}, "--replica-cpus=-1.0 must be above 0"),
        ({}, {"MLFLOW_ACC_OFFLINE": "maybe"}, "MLFLOW_ACC_OFFLINE='maybe' is not a yes/no value"),
        ({"target": "external"}, {}, "the external target needs the deployment's URL"),
        ({"target": "external", "tracking_uri": "mlflow.example.com"}, {}, "is not an http(s) URL"),
        ({"tracking_uri": "https://x.example.com"}, {}, "but --target is local"),
        ({"ca_bundle": "/nonexistent/ca.pem"}, {}, "--ca-bundle /nonexistent/ca.pem: no such file"),
        ({"db_dsn": "postgres://u:p@h/db"}, {}, "--db-dsn is not a MySQL DSN"),
        ({"object_store": "gcs"}, {}, "--object-store gcs is not available on the local target"),
        ({"object_store": "minio", "offline": True}, {}, "needs a pulled MinIO image"),
        ({"bucket": "ftp://b/p"}, {}, "has scheme ftp://"),
        ({"mlflow_version": "latest"}, {}, "is not a version"),
        ({"target": "kind", "namespace": "Bad_Name"}, {}, "is not a valid Kubernetes name"),
        (
            {"target": "external", "tracking_uri": "https://m.example.com", "object_store": "gcs"},
            {},
            "needs the artifact destination",
        ),
    ],
)
def test_bad_input_is_one_line_with_a_hint(flags, env, expected):
    with pytest.raises(SetupError) as caught:
        resolve(flags, environ=env)
    line = caught.value.line()
    assert expected in line
    assert "\n" not in line
    assert caught.value.hint, f"no hint on how to fix: {line}"


def test_password_in_dsn_is_accepted_and_parsed():
    options = resolve(
        {
            "target": "external",
            "tracking_uri": "https://m.example.com",
            "db_dsn": "mysql://reader:p%40ss@db.example.com:3306/mlflow",
        },
        environ={},
    )
    assert options.db_dsn.endswith("/mlflow")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("gs://mlflow-artifacts/mlruns", ("gs", "mlflow-artifacts", "mlruns")),
        ("s3://bucket-1/a/b/", ("s3", "bucket-1", "a/b")),
        ("plain-bucket", (None, "plain-bucket", "")),
    ],
)
def test_parse_bucket(value, expected):
    assert parse_bucket(value) == expected


@pytest.mark.parametrize("size", ["2g", "2gb", "1.5G", "1536m", "1536MB", "100"])
def test_replica_memory_takes_what_docker_takes(size):
    assert resolve({"replica_memory": size}, environ={}).replica_memory == size


@pytest.mark.parametrize("size", ["1t", "1GiB", "lots", "2 g"])
def test_replica_memory_refuses_what_docker_refuses(size):
    with pytest.raises(SetupError, match="is not a size"):
        resolve({"replica_memory": size}, environ={})
