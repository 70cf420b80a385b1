"""Big files past the proxy: the presigned multipart upload a default MLflow 3 client takes.

An MLflow 3 client asks the server's ``/server-info`` whether it offers multipart uploads
(a proxying server with a GCS or S3 destination says yes) and then sends every file of
``MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE`` (500 MiB) or more in parts PUT straight to
the bucket, through URLs the server signs: the proxy only starts and completes the upload.
A server that advertises this but cannot sign (GCS under Workload Identity, mlflow#21847)
fails every such upload, as does a bucket endpoint the client cannot reach. The threshold
is lowered here so that a 12 MiB file takes the path a 500 MiB one takes.
"""

from __future__ import annotations

import pytest
from mlflow_acceptance.fixtures.core.client_process import ClientProcessError, run_client
from mlflow_acceptance.suites.artifact_files import assert_in_bucket, bucket_key

pytestmark = [pytest.mark.acceptance, pytest.mark.usefixtures("bucket_unchecked_note")]

SERVER_INFO = "/api/3.0/mlflow/server-info"
MPU = "/api/2.0/mlflow-artifacts/mpu"
PART = 5 * 2**20  # S3's and GCS's smallest part, but the last
SIZE = 12 * 2**20  # three parts
THRESHOLD = 8 * 2**20

SIGNING_ADVICE = (
    "a server on GCS under Workload Identity cannot sign URLs (mlflow#21847: its "
    "credentials hold no private key); give it an identity that can sign, or tell users "
    "to set MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD=false so big files go through the proxy"
)

# Counts the parts the client PUTs to presigned URLs, so the check knows the path it took.
UPLOAD = f"""
import hashlib
from mlflow.store.artifact.http_artifact_repo import HttpArtifactRepository

parts, original = [], HttpArtifactRepository._upload_part
def counted(*args, **kwargs):
    part = original(*args, **kwargs)
    parts.append(part.part_number)
    return part
HttpArtifactRepository._upload_part = staticmethod(counted)

data = os.urandom({SIZE})
Path("big.bin").write_bytes(data)
out["sha256"] = hashlib.sha256(data).hexdigest()
client.log_artifact(os.environ["RUN_ID"], "big.bin", "multipart")
out["parts"] = sorted(parts)
back = client.download_artifacts(os.environ["RUN_ID"], "multipart/big.bin", "back")
out["sha256_back"] = hashlib.sha256(Path(back).read_bytes()).hexdigest()
"""


@pytest.fixture(scope="module")
def advertised(deployment) -> dict:
    """The server's /server-info; skips where no client would take the multipart path."""
    response = deployment.http.get(SERVER_INFO)
    if response.status_code == 404:
        pytest.skip(
            f"the server serves no {SERVER_INFO} (MLflow before 3): its clients upload in "
            "parts only when MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD is set"
        )
    assert response.status_code == 200, f"GET {SERVER_INFO}: HTTP {response.status_code}"
    info = response.json()
    if not info.get("multipart_uploads_enabled"):
        pytest.skip(
            "the server does not advertise multipart uploads: every file goes through the "
            "proxy, which test_large_artifact_streams_both_ways checks"
        )
    if reason := deployment.absent.get("multipart_uploads"):
        pytest.skip(f"{deployment.label} cannot take multipart uploads: {reason}")
    return info


def test_the_server_starts_and_aborts_an_advertised_multipart_upload(
    deployment, advertised, artifact_run
):
    experiment_id, run_id = artifact_run
    path = bucket_key(experiment_id, run_id, "multipart-probe")
    body = {"path": "probe.bin", "num_parts": 2}
    created = deployment.http.post(f"{MPU}/create/{path}", json=body)
    assert created.status_code == 200, (
        "the server advertises multipart uploads, so a default client sends every file of "
        "500 MiB or more in presigned parts, but the server cannot start a multipart "
        f"upload: HTTP {created.status_code} {created.text[:300]!r}; {SIGNING_ADVICE}"
    )
    upload = created.json()
    urls = [credential.get("url", "") for credential in upload.get("credentials", [])]
    assert upload.get("upload_id"), f"the multipart upload came back without its id: {upload}"
    assert len(urls) == 2, f"a multipart upload of 2 parts came back with {len(urls)} URLs"
    assert all(url.startswith(("http://", "https://")) for url in urls), (
        f"the part URLs are not URLs a client can PUT to: {urls}"
    )
    aborted = deployment.http.post(
        f"{MPU}/abort/{path}", json={"path": "probe.bin", "upload_id": upload["upload_id"]}
    )
    assert aborted.status_code == 200, (
        f"aborting the multipart upload it started failed: HTTP {aborted.status_code} "
        f"{aborted.text[:300]!r}: a client that fails half-way leaves its parts in the bucket"
    )


def test_a_default_client_uploads_a_file_past_the_multipart_threshold(
    deployment, advertised, artifact_run, tmp_path
):
    experiment_id, run_id = artifact_run
    try:
        out = run_client(
            UPLOAD,
            deployment.tracking_uri,
            tmp_path / "home",
            deployment.ca_bundle,
            extra_env={
                **deployment.bucket_client_env,
                "RUN_ID": run_id,
                "MLFLOW_MULTIPART_UPLOAD_MINIMUM_FILE_SIZE": str(THRESHOLD),
                "MLFLOW_MULTIPART_UPLOAD_CHUNK_SIZE": str(PART),
            },
            credentials=deployment.credentials,
        )
    except ClientProcessError as exc:
        pytest.fail(
            f"a default MLflow client could not upload a {SIZE // 2**20} MiB file in "
            f"presigned parts, as it does every file of 500 MiB or more here: {exc}\n"
            f"(if the server could not sign: {SIGNING_ADVICE}; if a part PUT failed, the "
            "bucket's endpoint in the URLs is not reachable from where clients run)"
        )
    assert out["parts"] == [1, 2, 3], (
        f"the client PUT parts {out['parts']} to the bucket, not 1-3: it did not take the "
        "multipart path the server advertises, so this check proved nothing about it"
    )
    assert out["sha256_back"] == out["sha256"], "the file uploaded in parts came back different"
    assert_in_bucket(
        deployment, bucket_key(experiment_id, run_id, "multipart/big.bin"), out["sha256"]
    )
