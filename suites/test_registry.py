"""Model registry through the front door: versions from a run's artifacts, aliases, tags,
search, download by alias, deletion, and refusal of sources that escape the run."""

from __future__ import annotations

import hashlib
from pathlib import Path

import mlflow
import pytest
from mlflow.exceptions import MlflowException
from mlflow_acceptance.fixtures.core.mlflow_api import every_page

pytestmark = pytest.mark.acceptance

MLMODEL = "artifact_path: model\nflavors:\n  python_function:\n    loader_module: acceptance\n"


@pytest.fixture
def run_with_model(client, new_experiment, tmp_path):
    run = client.create_run(new_experiment("registry"))
    model = tmp_path / "model"
    model.mkdir()
    (model / "MLmodel").write_text(MLMODEL)
    (model / "weights.bin").write_bytes(b"\x00\x01" * 4096)
    client.log_artifacts(run.info.run_id, str(model), "model")
    return run, model


def test_register_version_alias_tag_search_download_delete(
    deployment, client, run_with_model, tmp_path
):
    run, model = run_with_model
    name = deployment.unique_name("model")
    source = f"{run.info.artifact_uri}/model"
    client.create_registered_model(name, tags={"team": "acceptance"}, description="suite")
    first = client.create_model_version(
        name, source, run_id=run.info.run_id, tags={"stage": "candidate"}
    )
    second = mlflow.register_model(f"runs:/{run.info.run_id}/model", name)
    assert (first.version, second.version) == ("1", "2")
    assert client.get_model_version(name, "2").status == "READY"

    client.set_registered_model_alias(name, "champion", "2")
    assert client.get_model_version_by_alias(name, "champion").version == "2"
    client.set_model_version_tag(name, "2", "validated", "true")
    client.set_registered_model_tag(name, "owner", "suite")

    (found,) = client.search_registered_models(filter_string=f"name = '{name}'")
    assert found.tags == {"team": "acceptance", "owner": "suite"}
    assert found.aliases == {"champion": "2"}
    versions = client.search_model_versions(f"name = '{name}'")
    assert sorted(v.version for v in versions) == ["1", "2"]
    validated = client.search_model_versions(f"name = '{name}' and tag.validated = 'true'")
    assert [v.version for v in validated] == ["2"]

    downloaded = Path(
        mlflow.artifacts.download_artifacts(
            f"models:/{name}@champion", dst_path=str(tmp_path / "dl")
        )
    )
    for file in ("MLmodel", "weights.bin"):
        want = hashlib.sha256((model / file).read_bytes()).hexdigest()
        got = hashlib.sha256((downloaded / file).read_bytes()).hexdigest()
        assert got == want, f"models:/{name}@champion {file} differs from what was logged"

    client.delete_registered_model_alias(name, "champion")
    with pytest.raises(MlflowException):
        client.get_model_version_by_alias(name, "champion")
    client.delete_model_version(name, "1")
    with pytest.raises(MlflowException) as caught:
        client.get_model_version(name, "1")
    assert caught.value.error_code == "RESOURCE_DOES_NOT_EXIST"
    client.delete_registered_model(name)
    with pytest.raises(MlflowException) as caught:
        client.get_registered_model(name)
    assert caught.value.error_code == "RESOURCE_DOES_NOT_EXIST"


def test_rename_update_untag_latest_and_page_through_the_registry(
    deployment, client, run_with_model
):
    """What registry users and CI pipelines call besides creating versions: rename (its
    versions follow), description updates, tag removal, the latest version, and paged
    searches of models and versions (every item once)."""
    run, _ = run_with_model
    source = f"{run.info.artifact_uri}/model"
    stem = deployment.unique_name("pages")
    names = [f"{stem}-{i}" for i in range(3)]
    for name in names:
        client.create_registered_model(name, tags={"gone": "soon"})
    for _ in range(3):
        client.create_model_version(names[0], source, run_id=run.info.run_id)

    renamed = f"{names[0]}-renamed"
    client.rename_registered_model(names[0], renamed)
    with pytest.raises(MlflowException) as caught:
        client.get_registered_model(names[0])
    assert caught.value.error_code == "RESOURCE_DOES_NOT_EXIST", "the old name still answers"
    assert client.get_model_version(renamed, "3").name == renamed, "versions did not follow"
    client.update_registered_model(renamed, description="renamed by the suite")
    client.update_model_version(renamed, "2", description="second")
    client.delete_registered_model_tag(renamed, "gone")
    model = client.get_registered_model(renamed)
    assert (model.description, model.tags) == ("renamed by the suite", {})
    assert client.get_model_version(renamed, "2").description == "second"
    assert [v.version for v in client.get_latest_versions(renamed)] == ["3"]

    models = sorted(
        m.name
        for page in every_page(
            client.search_registered_models, 3, filter_string=f"name LIKE '{stem}-%'", max_results=2
        )
        for m in page
    )
    assert models == sorted([renamed, *names[1:]]), f"registered-model pages held {models}"
    versions = sorted(
        v.version
        for page in every_page(
            client.search_model_versions, 3, filter_string=f"name = '{renamed}'", max_results=2
        )
        for v in page
    )
    assert versions == ["1", "2", "3"], f"model-version pages held {versions}"
    for name in (renamed, *names[1:]):
        client.delete_registered_model(name)


# Sources that point outside the run's own artifacts. Path traversal and local files
# would let the server read its own disk; other buckets would let it read, with its own
# identity, data the caller could not (model downloads go through the server).
ESCAPING_SOURCES = [
    "{artifact_uri}/../../../other-run/artifacts",
    "{artifact_uri}/model/..%2f..%2f..%2f",
    "mlflow-artifacts:/../../etc",
    "file:///etc",
    "/etc/passwd",
    "http://evil.example.com/model",
    "ftp://evil.example.com/model",
    "gs://another-bucket/model",
    "s3://another-bucket/model",
]


@pytest.mark.hardening  # the stock chart sets no source validation
@pytest.mark.parametrize("template", ESCAPING_SOURCES)
def test_model_version_source_escaping_the_run_is_refused(
    deployment, client, run_with_model, template
):
    run, _ = run_with_model
    name = deployment.unique_name("escape")
    client.create_registered_model(name)
    source = template.format(artifact_uri=run.info.artifact_uri)
    try:
        version = client.create_model_version(name, source, run_id=run.info.run_id)
    except MlflowException as refused:
        error_code = refused.error_code
    else:
        pytest.fail(
            f"model version {version.version} was created from {source!r}, outside run "
            f"{run.info.run_id}: set MLFLOW_CREATE_MODEL_VERSION_SOURCE_VALIDATION_REGEX on "
            "the server to allow only proxied artifacts and runs:/ or models:/ URIs (as "
            "values/base.yaml does; models:/ is how MLflow 3 registers logged models)"
        )
    assert error_code == "INVALID_PARAMETER_VALUE", f"refused with {error_code}, not as invalid"
