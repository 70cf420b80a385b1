"""The import root: ``mlflow_acceptance.fixtures``, ``.suites``, ``.chaos`` and ``.load``.

Why a module with a ``__path__``: the design card keeps ``fixtures/``, ``suites/``,
``chaos/`` and ``load/`` at the top of the checkout, but an installed wheel cannot put
names as common as ``fixtures`` (a PyPI project of its own) or ``load`` at the top of
site-packages. Setting ``__path__`` makes this module a package whose subpackages are the
folders beside it, so the same imports work in a checkout (this file) and in the wheel
(this file becomes ``mlflow_acceptance/__init__.py``, the folders beside it again).
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent
"""The folder holding fixtures/, suites/, chaos/, load/, images/, values/, pyproject.toml."""

__path__ = [str(ROOT)]

IMPORT_ROOT = ROOT if Path(__file__).name == "mlflow_acceptance.py" else ROOT.parent
"""What a child process needs on PYTHONPATH to import this package (a checkout's root,
or the site-packages the wheel went to)."""
