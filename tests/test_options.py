"""Options: flags win over MLFLOW_ACC_* variables, defaults fill the rest, each target takes
only its own options, and bad input is one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow_acceptance.fixtures.core import object_store
from mlflow_acceptance.fixtures.core.errors import SetupError
from mlflow_acceptance.fixtures.core.object_store import parse_bucket, verifier_for
from mlflow_acceptance.fixtures.registry import TARGETS, all_specs, options_for, resolve, specs_of
from mlflow_acceptance.fixtures.targets.local.breaks import BrokenStack

EXTERNAL = {"target": "external", "tracking_uri": "https://mlflow.example.com"}


def test_defaults_describe_the_local_target():
    options = resolve({}, environ={})
    assert options.target == "local"
    assert options.object_store == "fake-gcs"
    assert options.reports_dir == Path("reports")
    assert (options.replicas, options.replica_cpus, options.replica_memory) == (2, 0.5, "2g")
    assert options.breaks == BrokenStack()
    assert options.offline is False


def test_flag_wins_over_environment():
    options = resolve({"replicas": "3"}, environ={"MLFLOW_ACC_REPLICAS": "5"})
    assert options.replicas == 3


def test_environment_fills_in_missing_flags():
    env = {
        "MLFLOW_ACC_TARGET": "external",
        "MLFLOW_ACC_TRACKING_URI": "https://mlflow.example.com",
        "MLFLOW_ACC_ALLOW_DISRUPTIVE": "yes",
    }
    options = resolve({}, environ=env)
    assert options.target == "external"
    assert options.tracking_uri == "https://mlflow.example.com"
    assert options.allow_disruptive is True
    assert options.object_store is None  # external: no store unless given


def test_every_option_has_a_flag_and_an_env_var():
    for spec in all_specs():
        assert spec.flag == "--" + spec.name.replace("_", "-")
        assert spec.env == "MLFLOW_ACC_" + spec.name.upper()


@pytest.mark.parametrize("target", ["local", "external", "kind", "gke"])
def test_options_and_their_specs_are_one_definition(target):
    """A target's Options hold exactly its specs, each defaulting to the spec's default."""
    values = {"tracking_uri": "https://m.example.com"} if target == "external" else {}
    options = options_for(target, **values)
    names = {spec.name for spec in specs_of(TARGETS[target])}
    assert {name for name in names if name in options} == names
    other = {spec.name for spec in all_specs()} - names
    for name in other:
        assert name not in options
        with pytest.raises(AttributeError, match="takes no option"):
            getattr(options, name)


@pytest.mark.parametrize(
    ("flags", "env", "expected"),
    [
        ({"target": "kind", "replicas": "3"}, {}, "--replicas does not apply to the kind target"),
        ({"target": "gke", "offline": True}, {}, "--offline does not apply to the gke target"),
        ({**EXTERNAL, "breaks": "no-hsts"}, {}, "--breaks does not apply to the external target"),
        ({"target": "kind"}, {"MLFLOW_ACC_REPLICAS": "3"}, "MLFLOW_ACC_REPLICAS does not apply"),
        (
            {"tracking_uri": "https://x.example.com"},
            {},
            "--tracking-uri does not apply to the local",
        ),
        ({"keep_cluster": True}, {}, "--keep-cluster does not apply to the local target"),
    ],
)
def test_an_option_of_another_target_is_an_error_naming_its_targets(flags, env, expected):
    with pytest.raises(SetupError) as caught:
        resolve(flags, environ=env)
    line = caught.value.line()
    assert expected in line
    assert "it is an option of the" in line


def test_external_with_a_kube_context_takes_the_cluster_options():
    options = resolve({**EXTERNAL, "kube_context": "staging", "namespace": "ml"}, environ={})
    assert (options.target, options.kube_context, options.namespace) == (
        "external",
        "staging",
        "ml",
    )
    assert options.object_store is None  # no default store for an external deployment


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
        (
            {**EXTERNAL, "ca_bundle": "/nonexistent/ca.pem"},
            {},
            "--ca-bundle /nonexistent/ca.pem: no such file",
        ),
        ({**EXTERNAL, "db_dsn": "postgres://u:p@h/db"}, {}, "--db-dsn is not a MySQL DSN"),
        ({"object_store": "gcs"}, {}, "--object-store gcs is not available on the local target"),
        ({"target": "gke", "object_store": "minio"}, {}, "not available on the gke target"),
        ({"object_store": "minio", "offline": True}, {}, "needs a pulled MinIO image"),
        ({**EXTERNAL, "bucket": "ftp://b/p"}, {}, "has scheme ftp://"),
        ({"mlflow_version": "latest"}, {}, "is not a version"),
        ({"target": "kind", "namespace": "Bad_Name"}, {}, "is not a valid Kubernetes name"),
        ({"breaks": "nope"}, {}, "unknown break nope"),
        ({**EXTERNAL, "object_store": "gcs"}, {}, "needs the artifact destination"),
        ({"build_ca_bundle": "/nonexistent/ca.pem"}, {}, "--build-ca-bundle /nonexistent"),
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
        {**EXTERNAL, "db_dsn": "mysql://reader:p%40ss@db.example.com:3306/mlflow"}, environ={}
    )
    assert options.db_dsn.endswith("/mlflow")


def test_breaks_are_parsed_once_into_a_broken_stack():
    options = resolve({"breaks": "no-hsts, small-db"}, environ={})
    assert options.breaks == BrokenStack(frozenset({"no-hsts", "small-db"}))


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


@pytest.mark.parametrize(
    ("bucket", "store", "api"),
    [
        ("gs://bkt/p", None, "gcs"),
        ("s3://bkt/p", None, "s3"),
        ("bkt/p", None, "gcs"),  # no scheme, no store: the production store, GCS
        ("bkt/p", "gcs", "gcs"),
        ("bkt/p", "fake-gcs", "gcs"),
        ("bkt/p", "minio", "s3"),
        ("bkt/p", "seaweedfs", "s3"),
        ("s3://bkt/p", "gcs", "s3"),  # the scheme decides
    ],
)
def test_one_rule_picks_the_bucket_api_for_every_target(monkeypatch, bucket, store, api):
    """The external and cluster targets both call verifier_for: one rule, no disagreement."""
    monkeypatch.setattr(object_store, "GcsVerifier", lambda b, p: ("gcs", b, p))
    monkeypatch.setattr(object_store, "S3Verifier", lambda b, p: ("s3", b, p))
    assert verifier_for(bucket, store) == (api, "bkt", "p")


@pytest.mark.parametrize("size", ["2g", "2gb", "1.5G", "1536m", "1536MB", "100"])
def test_replica_memory_takes_what_docker_takes(size):
    assert resolve({"replica_memory": size}, environ={}).replica_memory == size


@pytest.mark.parametrize("size", ["1t", "1GiB", "lots", "2 g"])
def test_replica_memory_refuses_what_docker_refuses(size):
    with pytest.raises(SetupError, match="is not a size"):
        resolve({"replica_memory": size}, environ={})


def test_the_plain_http_entry_of_an_external_front_door_may_be_on_any_port():
    """Audit: the redirect check skipped whenever the HTTPS port was not 443."""
    from mlflow_acceptance.fixtures.targets.external.target import ExternalTarget

    options = resolve(
        {
            **EXTERNAL,
            "tracking_uri": "https://mlflow.example.com:8443",
            "http_url": "http://mlflow.example.com:8080",
        },
        environ={},
    )
    deployment = ExternalTarget(options, "r1", Path("/tmp")).start()
    assert deployment.http_url == "http://mlflow.example.com:8080"
    derived = ExternalTarget(resolve(EXTERNAL, environ={}), "r1", Path("/tmp")).start()
    assert derived.http_url == "http://mlflow.example.com"
    with pytest.raises(SetupError, match="is not plain HTTP"):
        resolve({**EXTERNAL, "http_url": "https://mlflow.example.com"}, environ={})
