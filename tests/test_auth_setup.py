"""The basic-auth plumbing: credentials stay out of reports, every caller presents them, the
local stack's auth app is configured as the checks expect, and bad options are one line."""

from __future__ import annotations

import base64

import pytest
from mlflow_acceptance.fixtures.core import auth, redaction
from mlflow_acceptance.fixtures.core.deployment import Deployment
from mlflow_acceptance.fixtures.core.errors import SetupError
from mlflow_acceptance.fixtures.core.options import (
    EXISTING_DEPLOYMENT,
    Options,
    check_existing_deployment,
)
from mlflow_acceptance.fixtures.docker.services import ServerSettings, artifact_args, server_command
from mlflow_acceptance.fixtures.targets.local.breaks import parse


def test_a_password_is_never_shown():
    user = auth.Credentials.fresh("someone")
    assert len(user.password) >= 12  # MLflow's password policy
    assert user.password not in repr(user)
    assert redaction.redact(f"login {user.password}") == f"login {redaction.MASK}"


def test_every_kind_of_caller_presents_the_admin():
    admin = auth.Credentials("admin", "a-long-password-1")
    deployment = Deployment("d", "https://h", None, "3.17.2", "r", credentials=admin)
    assert deployment.http._session.auth == ("admin", "a-long-password-1")
    assert deployment.new_http(anonymous=True)._session.auth is None
    other = auth.Credentials("reader", "another-password-2")
    assert deployment.new_http(as_user=other)._session.auth == other.pair
    token = deployment.replica_headers()["Authorization"].removeprefix("Basic ")
    assert base64.b64decode(token).decode() == "admin:a-long-password-1"
    assert admin.client_env == {
        "MLFLOW_TRACKING_USERNAME": "admin",
        "MLFLOW_TRACKING_PASSWORD": "a-long-password-1",
    }
    without = Deployment("d", "https://h", None, "3.17.2", "r")
    assert without.http._session.auth is None
    assert without.replica_headers() == {}


def test_the_auth_app_runs_with_no_default_permission():
    ini = auth.config_ini("mysql+pymysql://u:secretpw@db:3306/mlflow_auth")
    assert "default_permission = NO_PERMISSIONS" in ini
    assert "secretpw" in redaction.known()


def test_the_server_command_names_the_auth_app_only_when_asked():
    settings = ServerSettings("img", "3.17.2", 2, 0.5, "2g", (), ())
    assert "--app-name=basic-auth" in server_command(
        settings, artifact_args("gs://b"), "basic-auth"
    )
    assert not any(a.startswith("--app-name") for a in server_command(settings, []))


def test_auth_breaks_turn_the_auth_app_on_and_open_one_replica():
    broken = parse("auth-one-replica-open")
    assert broken.needs_auth
    assert broken.runs_auth(last_replica=False)
    assert not broken.runs_auth(last_replica=True)
    assert parse("auth-default-read").auth_default_permission("NO_PERMISSIONS") == "READ"
    assert not parse("").needs_auth


def test_a_username_without_a_password_is_one_line():
    values = {spec.name: None for spec in EXISTING_DEPLOYMENT}
    values["auth_username"] = "admin"
    with pytest.raises(SetupError, match="--auth-username and --auth-password go together"):
        check_existing_deployment(Options(values))
