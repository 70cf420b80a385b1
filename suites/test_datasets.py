"""Evaluation datasets through the front door (MLflow 3's GenAI evaluation, on in every
server): a dataset is created for an experiment, records are upserted by their inputs,
read back, searched and deleted; all of it on ``/api/3.0``."""

from __future__ import annotations

import pytest
from mlflow.exceptions import MlflowException

pytestmark = pytest.mark.acceptance


def answers(dataset) -> dict[str, str]:
    """Each record's question and expected answer."""
    frame = dataset.to_df()
    return {row["inputs"]["question"]: row["expectations"]["answer"] for _, row in frame.iterrows()}


def test_an_evaluation_dataset_is_created_upserted_searched_and_deleted(deployment, new_experiment):
    deployment.require_server("3.4", "evaluation datasets outside Databricks")
    from mlflow.genai.datasets import create_dataset, delete_dataset, get_dataset, search_datasets

    experiment_id = new_experiment("datasets")
    name = deployment.unique_name("dataset")
    try:
        dataset = create_dataset(
            name=name, experiment_id=experiment_id, tags={"team": "acceptance"}
        )
    except MlflowException as refused:
        pytest.fail(
            f"creating evaluation dataset {name} failed: {refused.message[:200]}: MLflow 3's "
            "datasets API is on /api/3.0, which the front door must route"
        )
    dataset.merge_records(
        [{"inputs": {"question": f"q{i}"}, "expectations": {"answer": f"a{i}"}} for i in range(3)]
    )
    # The same inputs again: an upsert of that record, not a fourth one.
    dataset.merge_records([{"inputs": {"question": "q0"}, "expectations": {"answer": "fixed"}}])

    stored = get_dataset(dataset_id=dataset.dataset_id)
    assert stored.name == name
    assert answers(stored) == {"q0": "fixed", "q1": "a1", "q2": "a2"}, (
        "records read back differ from those upserted"
    )
    found = search_datasets(experiment_ids=[experiment_id], filter_string=f"name = '{name}'")
    assert [d.dataset_id for d in found] == [dataset.dataset_id]

    delete_dataset(dataset_id=dataset.dataset_id)
    left = search_datasets(experiment_ids=[experiment_id], filter_string=f"name = '{name}'")
    assert not left, f"dataset {name} is still found after it was deleted"
