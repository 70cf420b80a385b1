"""Artifact proxying: bytes go client -> server -> bucket, and the client holds no credentials.

With an object-store verifier every upload is also found in the bucket, under
``<destination>/<experiment_id>/<run_id>/artifacts/<path>``, with the same SHA-256.
"""

from __future__ import annotations

import hashlib
import os
import resource
import time
from pathlib import Path

import pytest
from mlflow_acceptance.fixtures.core.client_process import run_client
from mlflow_acceptance.fixtures.core.mlflow_api import ARTIFACTS
from mlflow_acceptance.suites.artifact_files import (
    assert_in_bucket,
    bucket_key,
    sha256_file,
    write_random,
)

pytestmark = [pytest.mark.acceptance, pytest.mark.usefixtures("bucket_unchecked_note")]


def test_new_experiments_store_artifacts_through_the_proxy(client, new_experiment):
    experiment = client.get_experiment(new_experiment("proxy-location"))
    assert experiment.artifact_location.startswith("mlflow-artifacts:/"), (
        f"artifact_location is {experiment.artifact_location!r}: the server does not proxy "
        "artifacts (--serve-artifacts with --artifacts-destination), so clients would need "
        "bucket credentials"
    )
    run = client.create_run(experiment.experiment_id)
    assert run.info.artifact_uri == (f"{experiment.artifact_location}/{run.info.run_id}/artifacts")


def test_client_without_storage_credentials_round_trips_artifacts(
    deployment, new_experiment, tmp_path
):
    experiment_id = new_experiment("no-credentials")
    script = """
run = client.create_run(os.environ["EXPERIMENT_ID"])
out["artifact_uri"] = run.info.artifact_uri
if run.info.artifact_uri.startswith("mlflow-artifacts:"):  # else the test says why
    Path("hello.txt").write_text("hello through the proxy")
    client.log_artifact(run.info.run_id, "hello.txt", "docs")
    out["run_id"] = run.info.run_id
    path = client.download_artifacts(run.info.run_id, "docs/hello.txt", ".")
    out["content"] = Path(path).read_text()
"""
    out = run_client(
        script,
        deployment.tracking_uri,
        tmp_path / "home",
        deployment.ca_bundle,
        # No cloud metadata server either: a runner's own identity must not do the work.
        extra_env={
            **deployment.bucket_client_env,
            "EXPERIMENT_ID": experiment_id,
            "NO_GCE_CHECK": "True",
            "GCE_METADATA_HOST": "127.0.0.1:9",
            "GCE_METADATA_IP": "127.0.0.1:9",
            "AWS_EC2_METADATA_DISABLED": "true",
        },
        credentials=deployment.credentials,
    )
    assert out["artifact_uri"].startswith("mlflow-artifacts:"), (
        f"the run's artifact URI is {out['artifact_uri']}: the client would talk to the "
        "bucket itself, not through the server"
    )
    assert out["content"] == "hello through the proxy"
    expected = hashlib.sha256(b"hello through the proxy").hexdigest()
    assert_in_bucket(
        deployment, bucket_key(experiment_id, out["run_id"], "docs/hello.txt"), expected
    )


def test_text_binary_and_nested_folders_round_trip(deployment, client, artifact_run, tmp_path):
    experiment_id, run_id = artifact_run
    source = tmp_path / "src"
    (source / "tree" / "a" / "b").mkdir(parents=True)
    files = {
        "notes.txt": "grüße, 模型, ok\n".encode(),
        "tree/a/b/deep.json": b'{"deep": true}',
        "tree/a/weights.bin": os.urandom(2**20 + 17),
        "tree/top.csv": b"x,y\n1,2\n",
    }
    for rel, data in files.items():
        (source / rel).parent.mkdir(parents=True, exist_ok=True)
        (source / rel).write_bytes(data)
    client.log_artifact(run_id, str(source / "notes.txt"))
    client.log_artifacts(run_id, str(source / "tree"), "tree")

    top = {f.path: f.is_dir for f in client.list_artifacts(run_id)}
    expected_top = {"notes.txt": False, "tree": True}
    assert top == expected_top, (
        f"the run's artifact listing through the front door is {top}, expected {expected_top} "
        "(path: is folder): an upload that was acknowledged is not listed, so replicas do not "
        "share one artifact destination or the upload never reached it"
    )
    nested = {f.path: f.file_size for f in client.list_artifacts(run_id, "tree/a")}
    expected_nested = {"tree/a/b": None, "tree/a/weights.bin": len(files["tree/a/weights.bin"])}
    assert nested == expected_nested, (
        f"listing tree/a gave {nested}, expected {expected_nested} (path: size in bytes): an "
        "acknowledged upload is not listed whole, so replicas do not share one artifact "
        "destination or the upload never reached it"
    )

    dest = Path(client.download_artifacts(run_id, "", str(tmp_path / "dl")))
    for rel, data in files.items():
        got = dest / rel
        assert got.is_file(), f"{rel} missing after download"
        assert sha256_file(got) == hashlib.sha256(data).hexdigest(), f"{rel} differs"
        assert_in_bucket(
            deployment, bucket_key(experiment_id, run_id, rel), hashlib.sha256(data).hexdigest()
        )


def test_large_artifact_streams_both_ways(
    deployment, client, artifact_run, tmp_path, measure, run_state, monkeypatch
):
    # Through the proxy both ways, also where the server offers presigned transfers (an S3
    # destination: MLflow 3 clients then download from the bucket in 100 MiB ranges held
    # in memory); test_multipart_upload.py checks that path.
    monkeypatch.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD", "false")
    monkeypatch.setenv("MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD", "false")
    experiment_id, run_id = artifact_run
    size = run_state.options.large_artifact_mib * 2**20
    big = tmp_path / "big.bin"
    expected = write_random(big, size)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    mib = size / 2**20
    started = time.monotonic()
    try:
        client.log_artifact(run_id, str(big), "large")
    except Exception as exc:  # the client's HTTPError or MlflowException, with the status
        if "413" not in str(exc):
            raise
        pytest.fail(
            f"uploading a {mib:.0f} MiB artifact was refused with HTTP 413: a body-size limit "
            "on the way (nginx client_max_body_size, the ingress's proxy-body-size) is below "
            f"the artifacts users log: {str(exc)[:200]}"
        )
    upload = time.monotonic() - started
    big.unlink()
    started = time.monotonic()
    downloaded = Path(client.download_artifacts(run_id, "large/big.bin", str(tmp_path / "dl")))
    download = time.monotonic() - started
    rss_growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss_before

    measure("artifacts.large_mib", mib)
    measure("artifacts.large_upload_mib_per_s", round(mib / upload, 1))
    measure("artifacts.large_download_mib_per_s", round(mib / download, 1))
    assert downloaded.stat().st_size == size
    assert sha256_file(downloaded) == expected, "the large artifact came back different"
    assert rss_growth < size / 2, (
        f"the client's peak memory grew by {rss_growth / 2**20:.0f} MiB for a {mib:.0f} MiB "
        "artifact: it was held in memory instead of streamed"
    )
    assert_in_bucket(deployment, bucket_key(experiment_id, run_id, "large/big.bin"), expected)


def test_raw_proxy_api_put_get_list_delete(deployment, artifact_run):
    experiment_id, run_id = artifact_run
    base = f"{ARTIFACTS}/{bucket_key(experiment_id, run_id, 'raw')}"
    http = deployment.http
    payloads = {"data.json": b'{"a": 1}', "sub/page.html": b"<script>alert(1)</script>"}
    for rel, data in payloads.items():
        response = http.request("PUT", f"{base}/{rel}", data=data)
        assert response.status_code == 200, f"PUT {rel}: {response.status_code} {response.text}"

    for rel, data in payloads.items():
        response = http.get(f"{base}/{rel}")
        assert response.status_code == 200, f"GET {rel}: {response.status_code}"
        assert response.content == data, f"GET {rel} returned other bytes"
        assert response.headers.get("X-Content-Type-Options") == "nosniff", response.headers
        assert response.headers.get("Content-Disposition", "").startswith("attachment"), (
            f"{rel} is served inline: a browser could render it on the server's origin"
        )
    assert http.get(f"{base}/data.json").headers["Content-Type"].startswith("text/plain")
    assert http.get(f"{base}/sub/page.html").headers["Content-Type"].startswith("text/html")

    listing = http.get(ARTIFACTS, params={"path": bucket_key(experiment_id, run_id, "raw")})
    assert listing.status_code == 200, listing.text
    entries = {f["path"]: f.get("is_dir", False) for f in listing.json().get("files", [])}
    assert entries == {"data.json": False, "sub": True}, entries

    deleted = http.request("DELETE", f"{base}/data.json")
    assert deleted.status_code == 200, f"DELETE: {deleted.status_code} {deleted.text}"
    gone = http.get(f"{base}/data.json")
    assert gone.status_code != 200, "GET after DELETE still returns the artifact"
    assert payloads["data.json"] not in gone.content
    if deployment.object_store is not None:
        key = bucket_key(experiment_id, run_id, "raw/data.json")
        assert key not in deployment.object_store.list(key), "DELETE left the object in the bucket"


# Payloads follow the artifacts ARTIFACTS root, which maps to the destination (bucket/prefix);
# {canary} is an object planted at the bucket root, outside the destination, and {exp} is
# an experiment folder. Backslashes are not separators on the server (Linux) or in a bucket:
# they may be accepted as part of a name, but must stay inside the destination.
TRAVERSALS = [
    "../{canary}",
    "{exp}/../../{canary}",
    "%2e%2e%2f{canary}",
    "..%2f{canary}",
    "%2e%2e/{canary}",
    "{exp}/a/../../../{canary}",
    "%2fetc%2fpasswd",
    "/etc/passwd",
    "{exp}/..%2f..%2f..%2f..%2f..%2f..%2fetc%2fpasswd",
    "..%5c{canary}",
    "{exp}%5c..%5c..%5c{canary}",
]


@pytest.mark.parametrize("template", TRAVERSALS)
def test_path_traversal_is_refused(deployment, artifact_run, template):
    experiment_id, _ = artifact_run
    store = deployment.object_store
    canary_key = f"acc-canary-{deployment.run_id}.txt"
    canary = f"canary {deployment.run_id} outside the destination".encode()
    payload = template.format(canary=canary_key, exp=experiment_id)
    # Two payloads may reach the server as a name inside the destination: a backslash is a
    # name character, and an edge that merges slashes (Traefik's sanitizePath) turns
    # `artifacts//etc/passwd` into `artifacts/etc/passwd`. Accepting those is no traversal;
    # only the bucket can show that nothing was written outside.
    may_be_inside = "%5c" in payload or payload.startswith("/")
    if store is not None:
        store.put(canary_key, canary)
        before = store.bucket_keys()
    try:
        answers = {
            "upload": deployment.http.send_raw("PUT", f"{ARTIFACTS}/{payload}", b"x"),
            "download": deployment.http.send_raw("GET", f"{ARTIFACTS}/{payload}"),
            "list": deployment.http.send_raw("GET", f"{ARTIFACTS}?path={payload}"),
            "delete": deployment.http.send_raw("DELETE", f"{ARTIFACTS}/{payload}"),
        }
        # Refused: 4xx, or a redirect (nothing was done; it is not followed).
        accepted = {
            op: f"{r.status_code} {r.text[:120]!r}"
            for op, r in answers.items()
            if not 300 <= r.status_code < 500
        }
        if not may_be_inside:
            assert not accepted, f"{payload!r} was not refused (4xx or redirect): {accepted}"
        elif accepted and payload.startswith("/"):
            # Merged into a contained name, the download is the byte just uploaded; anything
            # else (a file's content, an error page) is not that name.
            assert answers["download"].content == b"x", (
                f"{payload!r} was accepted but does not read back as the name just written: "
                f"{accepted}"
            )
        leaked = [
            op for op, r in answers.items() if canary in r.content or b"root:x:0:0" in r.content
        ]
        assert not leaked, f"{payload!r} read a file outside the destination via {leaked}"
        if may_be_inside and accepted and store is None:
            pytest.skip(
                f"{payload!r} was accepted (a literal name, or slashes the edge merged) and read "
                "nothing outside; proving it wrote nothing outside the destination needs the "
                "bucket (--bucket)"
            )
        if store is not None:
            after = store.bucket_keys()
            assert after.get(canary_key) == len(canary), f"{payload!r} removed the canary"
            prefix = store.prefix + "/" if store.prefix else ""
            outside = sorted(k for k in set(after) - set(before) if not k.startswith(prefix))
            assert not outside, f"{payload!r} wrote outside the destination: {outside}"
    finally:
        if store is not None:
            store.delete(canary_key)
