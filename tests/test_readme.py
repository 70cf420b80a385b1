"""The README's option table stays true to the options the harness accepts."""

from __future__ import annotations

from pathlib import Path

from fixtures.options import SPECS

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_every_option_is_documented_with_its_env_var():
    for spec in SPECS:
        row = f"| `{spec.flag}` | `{spec.env}` |"
        assert row in README, f"README option table lacks {spec.flag} / {spec.env}"


def test_every_documented_option_exists():
    import re

    documented = set(re.findall(r"^\| `(--[a-z-]+)` \| `MLFLOW_ACC_", README, re.MULTILINE))
    assert documented == {spec.flag for spec in SPECS}


def test_readme_gives_the_ci_commands():
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    for command in (
        "nox -s tests",
        "nox -s local -- --offline",
        "nox -s lint",
        "nox -s load -- --target local --offline",
    ):
        assert command in README, command
        assert command in ci, command
