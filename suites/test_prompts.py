"""The prompt registry through the front door (on in every MLflow 3 server): prompts are
registered, versioned, aliased and loaded by URI, and kept apart from models.

Prompt versions are model versions whose source is a placeholder MLflow's own client and UI
send ("dummy-source"): a version-source regex that allows only artifact URIs, as a hardened
registry sets, refuses every prompt.
"""

from __future__ import annotations

import mlflow
import pytest
from mlflow.exceptions import MlflowException

pytestmark = pytest.mark.acceptance

TEXT = "Answer {{question}} in one sentence."
CHAT = [{"role": "system", "content": "You answer {{question}} briefly."}]


def test_a_prompt_is_versioned_aliased_loaded_by_uri_and_deleted(deployment, client):
    deployment.require_server("3.0", "the prompt registry of mlflow.genai")
    name = deployment.unique_name("prompt")
    try:
        first = mlflow.genai.register_prompt(
            name, TEXT, commit_message="first", tags={"team": "acceptance"}
        )
    except MlflowException as refused:
        pytest.fail(
            f"registering prompt {name} was refused: {refused.message[:200]}: a version-source "
            "regex must allow the placeholder sources prompts are sent with (dummy-source, "
            "prompt-template), or the prompt registry is unusable"
        )
    second = mlflow.genai.register_prompt(name, CHAT, commit_message="chat")
    assert (first.version, second.version) == (1, 2)

    mlflow.genai.set_prompt_alias(name, "production", 1)
    production = mlflow.genai.load_prompt(f"prompts:/{name}@production", cache_ttl_seconds=0)
    assert production.version == 1
    assert production.template == TEXT
    assert production.format(question="why") == "Answer why in one sentence."
    assert production.commit_message == "first"
    latest = mlflow.genai.load_prompt(f"prompts:/{name}/2", cache_ttl_seconds=0)
    assert latest.template == CHAT

    assert [p.name for p in mlflow.genai.search_prompts(filter_string=f"name = '{name}'")] == [name]
    models = client.search_registered_models(filter_string=f"name = '{name}'")
    assert not models, f"prompt {name} is listed among registered models"

    client.delete_prompt_version(name, "2")
    client.delete_prompt_version(name, "1")
    client.delete_prompt(name)
    assert not mlflow.genai.search_prompts(filter_string=f"name = '{name}'"), (
        f"prompt {name} is still found after it was deleted"
    )
