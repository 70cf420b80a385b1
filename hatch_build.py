"""The wheel's dependencies are pyproject.toml's ``test`` dependency group, flattened.

Why a hook: the dependency groups are the one home of every pin (nox syncs them from
uv.lock; the server image installs the ``server`` group from it), and a wheel's
Requires-Dist cannot name a group. Only ``uv build`` runs this; nox never builds the project.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from hatchling.metadata.plugin.interface import MetadataHookInterface

GROUP = "test"  # what the suites, chaos experiments, load runner and CLI import


def flatten(groups: dict[str, list[Any]], name: str) -> list[str]:
    """A group's requirements with every ``include-group`` expanded, in order."""
    found: list[str] = []
    for entry in groups[name]:
        nested = flatten(groups, entry["include-group"]) if isinstance(entry, dict) else [entry]
        found += [requirement for requirement in nested if requirement not in found]
    return found


class DependencyGroupHook(MetadataHookInterface):
    def update(self, metadata: dict[str, Any]) -> None:
        pyproject = tomllib.loads(Path(self.root, "pyproject.toml").read_text(encoding="utf-8"))
        metadata["dependencies"] = flatten(pyproject["dependency-groups"], GROUP)
