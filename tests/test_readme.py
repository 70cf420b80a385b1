"""The README's option table stays true to the options the harness accepts."""

from __future__ import annotations

import re
from pathlib import Path

from mlflow_acceptance.fixtures.registry import all_specs

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_every_option_is_documented_with_its_env_var():
    for spec in all_specs():
        row = f"| `{spec.flag}` | `{spec.env}` |"
        assert row in README, f"README option table lacks {spec.flag} / {spec.env}"


def test_every_documented_option_exists():

    documented = set(re.findall(r"^\| `(--[a-z-]+)` \| `MLFLOW_ACC_", README, re.MULTILINE))
    assert documented == {spec.flag for spec in all_specs()}


def test_readme_gives_the_ci_commands():
    ci = (Path(__file__).resolve().parents[1] / ".ci" / "run").read_text()
    for command in (
        "nox -s tests",
        "nox -s local -- --offline --shards 2",
        "nox -s lint",
        "nox -s load -- --target local --offline",
        "nox -s prove -- --offline --fast",
    ):
        assert command in README, command
        assert command in ci, command


def test_the_option_table_names_the_targets_that_take_each_option():

    from mlflow_acceptance.fixtures.registry import TARGETS, specs_of

    for spec in all_specs():
        takers = [t for t, e in TARGETS.items() if spec.name in {s.name for s in specs_of(e)}]
        expected = "all" if len(takers) == len(TARGETS) else ", ".join(takers)
        row = re.search(rf"^\| `{spec.flag}` \| `{spec.env}` \| ([^|]*) \|", README, re.MULTILINE)
        assert row, spec.flag
        assert row.group(1).strip() == expected, f"{spec.flag}: README says {row.group(1)!r}"


def test_the_set_up_line_installs_the_versions_ci_and_uv_lock_use():
    """A user following the README gets CI's nox and the uv pyproject.toml requires."""
    import tomllib

    root = Path(__file__).resolve().parents[1]
    ci = (root / ".ci" / "run").read_text()
    nox_version = re.search(r"^NOX_VERSION=(\S+)$", ci, re.MULTILINE).group(1)
    with (root / "pyproject.toml").open("rb") as handle:
        uv_version = tomllib.load(handle)["tool"]["uv"]["required-version"].removeprefix("==")
    set_up = f"python3 -m pip install nox=={nox_version} uv=={uv_version}"
    assert set_up in README, f"README's set-up line should read {set_up!r}"
