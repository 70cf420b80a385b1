"""The schema head of any MLflow server version, read from its migration files unimported."""

from __future__ import annotations

import glob
import os

import pytest
from mlflow_acceptance.fixtures.core import schema


def revision(rev: str, down) -> str:
    return (
        f'"""migration"""\nimport sqlalchemy as sa\nrevision = {rev!r}\ndown_revision = {down!r}\n'
    )


def test_the_head_is_the_revision_nothing_builds_on():
    sources = {
        "a.py": revision("aaa", None),
        "b.py": revision("bbb", "aaa"),
        "c.py": revision("ccc", "bbb"),
        "__init__.py": "",
    }
    assert schema.head_of(sources) == "ccc"


def test_a_merge_revision_closes_two_branches():
    sources = {
        "a.py": revision("aaa", None),
        "b.py": revision("bbb", "aaa"),
        "c.py": revision("ccc", "aaa"),
        "m.py": revision("mmm", ("bbb", "ccc")),
    }
    assert schema.head_of(sources) == "mmm"


def test_two_heads_are_refused():
    sources = {"a.py": revision("aaa", None), "b.py": revision("bbb", "aaa")}
    sources["c.py"] = revision("ccc", "aaa")
    with pytest.raises(ValueError, match="expected one alembic head"):
        schema.head_of(sources)


def test_reading_the_installed_migrations_agrees_with_alembic():
    import mlflow

    folder = os.path.join(os.path.dirname(mlflow.__file__), "store/db_migrations/versions")
    sources = {path: open(path).read() for path in glob.glob(f"{folder}/*.py")}  # noqa: SIM115
    assert schema.head_of(sources) == schema.installed_head()


def test_a_missing_version_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(schema, "DOWNLOAD_TIMEOUT", 60)
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_RETRIES", "0")
    with pytest.raises(schema.SetupError) as caught:
        schema.fetch_wheel("0.0.1", tmp_path)
    assert "cannot fetch mlflow-skinny==0.0.1" in caught.value.line()
    assert "\n" not in caught.value.line()
