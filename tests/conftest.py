"""Self-tests of the suite's own code: no Docker engine, no cluster, a few seconds."""

pytest_plugins = ["pytester"]
