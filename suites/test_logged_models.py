"""MLflow 3's logged models through the front door: a model's files go through the artifact
proxy to ``<experiment>/models/<model id>/artifacts`` in the bucket, its params, tags and
linked metrics round-trip, searches filter, order and page, and a registry version made from
``models:/<model id>`` downloads by alias.

``log_model`` writes here, not under the run, in MLflow 3: a bucket policy, a proxy rule or a
version-source regex written for MLflow 2's ``<run>/artifacts`` layout breaks every model
logged since, while the run checks stay green.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import mlflow
import pytest
import requests
from mlflow.exceptions import MlflowException
from mlflow_acceptance.fixtures.core.mlflow_api import every_page

pytestmark = pytest.mark.acceptance

MLMODEL = "artifact_path: model\nflavors:\n  python_function:\n    loader_module: acceptance\n"
FILES = {
    "MLmodel": MLMODEL.encode(),
    "weights.bin": os.urandom(256 * 1024),
    "code/config.json": b'{"layers": 3}',
}
SYSTEM_TAG = "mlflow."  # tags MLflow sets itself (user, source, ...)


@pytest.fixture(autouse=True)
def _mlflow_3(deployment):
    deployment.require_server("3.0", "logged models")


@pytest.fixture
def model_dir(tmp_path) -> Path:
    folder = tmp_path / "model"
    for rel, data in FILES.items():
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        (folder / rel).write_bytes(data)
    return folder


# Written next to a model downloaded by a models:/ URI by the client itself, not logged.
CLIENT_META = "registered_model_meta"


def digests(folder: Path) -> dict[str, str]:
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in folder.rglob("*")
        if path.is_file() and path.name != CLIENT_META
    }


def expected_digests() -> dict[str, str]:
    return {rel: hashlib.sha256(data).hexdigest() for rel, data in FILES.items()}


def user_tags(tags: dict[str, str]) -> dict[str, str]:
    return {key: value for key, value in tags.items() if not key.startswith(SYSTEM_TAG)}


def logged_model(client, experiment_id: str, model_dir: Path, **kwargs):
    """A logged model with the files of ``model_dir``, finalized READY."""
    model = client.create_logged_model(experiment_id, **kwargs)
    client.log_model_artifacts(model.model_id, str(model_dir))
    return client.finalize_logged_model(model.model_id, "READY")


def test_a_logged_models_files_params_tags_and_metrics_round_trip(
    deployment, client, new_experiment, model_dir, tmp_path
):
    experiment_id = new_experiment("logged-model")
    run = client.create_run(experiment_id)
    model = client.create_logged_model(
        experiment_id,
        name="acceptance",
        source_run_id=run.info.run_id,
        params={"layers": "3"},
        tags={"team": "acceptance", "scratch": "x"},
        model_type="classifier",
    )
    assert str(model.status) == "PENDING", f"a new model is {model.status}, not PENDING"
    location = f"{experiment_id}/models/{model.model_id}/artifacts"
    assert model.artifact_location.startswith("mlflow-artifacts:/"), (
        f"the model's artifacts go to {model.artifact_location!r}, not through the proxy"
    )
    assert model.artifact_location.endswith(location), model.artifact_location

    try:
        client.log_model_artifacts(model.model_id, str(model_dir))
    except (MlflowException, requests.RequestException) as refused:  # the proxy's upload
        pytest.fail(
            f"the model's files could not be written through the proxy to {location}: "
            f"{str(refused)[:200]}: a front-door rule or bucket policy written for "
            "MLflow 2's <experiment>/<run>/artifacts layout refuses MLflow 3's models/ layout"
        )
    client.log_model_params(model.model_id, {"optimizer": "adam"})
    client.set_logged_model_tags(model.model_id, {"stage": "candidate"})
    client.delete_logged_model_tag(model.model_id, "scratch")
    client.log_metric(run.info.run_id, "accuracy", 0.93, model_id=model.model_id)
    client.finalize_logged_model(model.model_id, "READY")

    got = client.get_logged_model(model.model_id)
    assert str(got.status) == "READY"
    assert (got.name, got.model_type, got.source_run_id) == (
        "acceptance",
        "classifier",
        run.info.run_id,
    )
    assert got.params == {"layers": "3", "optimizer": "adam"}
    assert user_tags(got.tags) == {"team": "acceptance", "stage": "candidate"}
    assert [(m.key, m.value) for m in got.metrics or []] == [("accuracy", 0.93)], (
        f"the metric linked to the model is not on it: {got.metrics}"
    )

    listed = {f.path for f in client.list_logged_model_artifacts(model.model_id)}
    assert listed == {"MLmodel", "weights.bin", "code"}, listed
    downloaded = Path(
        mlflow.artifacts.download_artifacts(
            f"models:/{model.model_id}", dst_path=str(tmp_path / "download")
        )
    )
    assert digests(downloaded) == expected_digests(), (
        f"models:/{model.model_id} came back different from what was logged"
    )
    store = deployment.object_store
    if store is not None:
        in_bucket = {key: sha for key, (_, sha) in store.digests(f"{location}/").items()}
        want = {f"{location}/{rel}": sha for rel, sha in expected_digests().items()}
        assert in_bucket == want, (
            f"{store.destination}/{location}/ holds {sorted(in_bucket)}, expected "
            f"{sorted(want)} with their SHA-256: the model's files did not land in the bucket"
        )


def test_logged_models_are_filtered_ordered_paged_and_deleted(client, new_experiment, model_dir):
    experiment_id = new_experiment("logged-model-search")
    run = client.create_run(experiment_id)
    ids = []
    for i in range(5):
        model = client.create_logged_model(
            experiment_id, name=f"m{i}", tags={"parity": ("even", "odd")[i % 2]}
        )
        client.log_metric(run.info.run_id, "score", float(i), model_id=model.model_id)
        ids.append(model.model_id)

    pages = every_page(
        client.search_logged_models,
        max_pages=10,
        experiment_ids=[experiment_id],
        max_results=2,
        order_by=[{"field_name": "metrics.score", "ascending": False}],
    )
    assert [len(page) for page in pages] == [2, 2, 1], "5 models in pages of 2"
    assert [m.model_id for page in pages for m in page] == ids[::-1], (
        "ordered by metrics.score descending, each model once"
    )
    even = client.search_logged_models(
        [experiment_id], filter_string="tags.parity = 'even' AND metrics.score >= 2"
    )
    assert sorted(m.model_id for m in even) == sorted([ids[2], ids[4]])

    client.delete_logged_model(ids[0])
    left = client.search_logged_models([experiment_id], max_results=50)
    assert ids[0] not in {m.model_id for m in left}, "a deleted model is still searched"
    assert len(left) == 4


def test_a_version_registered_from_a_logged_model_downloads_by_alias(
    deployment, client, new_experiment, model_dir, tmp_path
):
    model = logged_model(client, new_experiment("logged-model-registry"), model_dir)
    name = deployment.unique_name("from-logged-model")
    try:
        version = mlflow.register_model(f"models:/{model.model_id}", name)
    except MlflowException as refused:
        pytest.fail(
            f"registering logged model {model.model_id} (source models:/{model.model_id}) was "
            f"refused: {refused.message[:200]}: a version-source regex must allow models:/ "
            "URIs, MLflow 3's log_model registers through them (values/base.yaml's does)"
        )
    assert version.source == f"models:/{model.model_id}", (
        f"version {version.version} has source {version.source!r}, not logged model "
        f"{model.model_id}"
    )
    client.set_registered_model_alias(name, "champion", version.version)
    downloaded = Path(
        mlflow.artifacts.download_artifacts(
            f"models:/{name}@champion", dst_path=str(tmp_path / "download")
        )
    )
    assert digests(downloaded) == expected_digests(), (
        f"models:/{name}@champion came back different from logged model {model.model_id}"
    )
    client.delete_registered_model(name)


class Doubler(mlflow.pyfunc.PythonModel):
    """The smallest model a flavor can log and serve back: it doubles its input."""

    def predict(self, context, model_input: list[float], params=None) -> list[float]:
        return [2 * value for value in model_input]


def test_a_flavor_logs_registers_and_serves_a_model_through_the_proxy(
    deployment, client, new_experiment
):
    """What users call: a flavor's ``log_model`` in a run (MLmodel, pickled model, environment
    files through the proxy), registered in the same call, loaded back by ``models:/<id>``
    and by alias, and predicting."""
    experiment_id = new_experiment("flavor-log-model")
    name = deployment.unique_name("flavor")
    with mlflow.start_run(experiment_id=experiment_id) as run:
        try:
            info = mlflow.pyfunc.log_model(
                name="doubler",
                python_model=Doubler(),
                pip_requirements=[f"mlflow=={mlflow.__version__}"],  # no environment inference
                registered_model_name=name,
            )
        except (MlflowException, requests.RequestException) as refused:
            cause = (
                "the front door or the server refuses MLflow 3's models/ layout "
                "(<experiment>/models/<model id>/artifacts)"
                if "403" in str(refused)
                else "the client's error says why"
            )
            pytest.fail(
                f"mlflow.pyfunc.log_model failed through the front door: {cause}: {refused}"
            )
    try:
        model = client.get_logged_model(info.model_id)
        assert model.source_run_id == run.info.run_id, (model.source_run_id, run.info.run_id)
        assert str(model.status) == "READY", f"log_model left the model {model.status}"
        location = f"{experiment_id}/models/{info.model_id}/artifacts"
        assert model.artifact_location.endswith(location), model.artifact_location
        listed = {f.path for f in client.list_logged_model_artifacts(info.model_id)}
        assert {"MLmodel", "python_model.pkl", "requirements.txt"} <= listed, listed
        predicted = mlflow.pyfunc.load_model(f"models:/{info.model_id}").predict([1.5, 4.0])
        assert list(predicted) == [3.0, 8.0], f"models:/{info.model_id} predicted {predicted}"

        version = info.registered_model_version
        assert version is not None, f"log_model(registered_model_name={name}) made no version"
        client.set_registered_model_alias(name, "champion", str(version))
        served = mlflow.pyfunc.load_model(f"models:/{name}@champion").predict([0.5])
        assert list(served) == [1.0], f"models:/{name}@champion predicted {served}"
        store = deployment.object_store
        if store is not None:
            in_bucket = {key.rsplit("/", 1)[-1] for key in store.digests(f"{location}/")}
            assert {"MLmodel", "python_model.pkl"} <= in_bucket, (
                f"{store.destination}/{location}/ holds {sorted(in_bucket)}: the flavor's "
                "files did not land in the bucket"
            )
    finally:
        client.delete_registered_model(name)
