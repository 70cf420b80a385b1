"""Artifact files as the artifact suites handle them: random bytes with their SHA-256, read
back in chunks, and found in the bucket under the key the server writes them to."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

CHUNK = 4 * 2**20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def write_random(path: Path, size: int) -> str:
    """Write ``size`` random bytes in chunks; return their SHA-256."""
    digest = hashlib.sha256()
    with path.open("wb") as handle:
        left = size
        while left:
            chunk = os.urandom(min(CHUNK, left))
            handle.write(chunk)
            digest.update(chunk)
            left -= len(chunk)
    return digest.hexdigest()


def bucket_key(experiment_id: str, run_id: str, path: str) -> str:
    return f"{experiment_id}/{run_id}/artifacts/{path}"


def assert_in_bucket(deployment, key: str, expected_sha: str) -> None:
    store = deployment.object_store
    if store is None:  # bucket_unchecked_note says so in the summary
        return
    listed = store.list(key)
    assert key in listed, (
        f"{key} is not in {store.destination}: the server did not write it to the bucket "
        f"(found under that prefix: {sorted(listed)[:5]})"
    )
    assert store.sha256(key) == expected_sha, f"{store.destination}/{key}: SHA-256 differs"
