"""Delete what a load run created: its prefixed experiments and their proxied artifacts.

Runs in the runner's process after locust has exited (or been stopped), so a crashed or
interrupted load still leaves a shared deployment as it was found. MLflow keeps deleted
experiments until the operator's ``mlflow gc``, as for every other suite.
"""

from __future__ import annotations

from fixtures.http import FrontDoorHttp

API = "api/2.0/mlflow"
ARTIFACTS = "api/2.0/mlflow-artifacts/artifacts"


def delete_experiments(http: FrontDoorHttp, prefix: str) -> tuple[int, list[str]]:
    """Delete every experiment whose name starts with ``prefix``; return (count, problems)."""
    if len(prefix) < 8 or "%" in prefix or "'" in prefix:
        return 0, [f"refusing to delete experiments by the short or odd prefix {prefix!r}"]
    problems: list[str] = []
    try:
        response = http.post(
            f"{API}/experiments/search",
            json={
                "filter": f"name LIKE '{prefix}%'",
                "max_results": 1000,
                "view_type": "ACTIVE_ONLY",
            },
        )
    except Exception as exc:
        return 0, [f"listing experiments {prefix}* failed: {exc}"]
    if response.status_code != 200:
        return 0, [f"listing experiments {prefix}* failed: HTTP {response.status_code}"]
    deleted = 0
    for experiment in response.json().get("experiments", []):
        experiment_id = experiment["experiment_id"]
        if experiment.get("artifact_location", "").startswith("mlflow-artifacts:"):
            try:
                answer = http.request("DELETE", f"{ARTIFACTS}/{experiment_id}")
                if answer.status_code != 200:
                    problems.append(
                        f"deleting artifacts of {experiment['name']}: HTTP {answer.status_code}"
                    )
            except Exception as exc:
                problems.append(f"deleting artifacts of {experiment['name']}: {exc}")
        try:
            answer = http.post(f"{API}/experiments/delete", json={"experiment_id": experiment_id})
            if answer.status_code == 200:
                deleted += 1
            else:
                problems.append(f"deleting {experiment['name']}: HTTP {answer.status_code}")
        except Exception as exc:
            problems.append(f"deleting {experiment['name']}: {exc}")
    return deleted, problems
