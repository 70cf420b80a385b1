"""Root conftest: the harness lives in fixtures/ and is loaded as one pytest plugin."""

pytest_plugins = ["mlflow_acceptance.fixtures.plugin"]
