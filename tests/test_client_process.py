"""The clean client process holds no storage credentials even when the harness does: the
artifact-proxy check relies on it (the check itself cannot see the harness's environment)."""

from __future__ import annotations

from mlflow_acceptance.fixtures.core.client_process import (
    STORAGE_CREDENTIAL_VARIABLES,
    credential_leaks,
    run_client,
)


def test_the_child_gets_no_storage_credentials_from_the_harness(tmp_path, monkeypatch):
    for name in STORAGE_CREDENTIAL_VARIABLES:
        monkeypatch.setenv(name, "harness-secret")
    (tmp_path / "home").mkdir()
    out = run_client("out['ok'] = True", "http://127.0.0.1:9", tmp_path / "home", None)
    assert out["ok"] is True
    assert credential_leaks(out) == []
    assert "MLFLOW_TRACKING_SERVER_CERT_PATH" not in out["env_keys"]


def test_credential_leaks_names_variables_and_home_files():
    out = {
        "env_keys": ["PATH", "AWS_ACCESS_KEY_ID"],
        "home_files": [".aws/credentials", "notes.txt"],
    }
    assert credential_leaks(out) == ["AWS_ACCESS_KEY_ID", "~/.aws/credentials"]
