"""Image planning: what is pulled or built in each mode, cache keys, and the offline fallback."""

from __future__ import annotations

import shutil

import docker.errors
import pytest
from mlflow_acceptance.fixtures.core.errors import SetupError
from mlflow_acceptance.fixtures.docker import images
from mlflow_acceptance.fixtures.docker.images import (
    Bootstrap,
    Build,
    ImageProvider,
    Pull,
    PullFailed,
    context_digest,
    plan_images,
)


def test_online_plan_pulls_official_images_and_builds_server_and_front_door():
    plan = plan_images("fake-gcs", "3.17.2", offline=False)
    assert plan.base == Pull("debian:bookworm-slim")
    assert plan.roles["database"] == Pull("mysql:8.4")
    assert plan.roles["object_store"] == Pull("fsouza/fake-gcs-server:1.54.0")
    assert plan.roles["server"].name == "mlflow"
    assert dict(plan.roles["server"].args)["MLFLOW_VERSION"] == "3.17.2"
    assert plan.roles["front_door"] == Build("nginx")
    assert plan.pulls() == ["debian:bookworm-slim", "mysql:8.4", "fsouza/fake-gcs-server:1.54.0"]


def test_offline_plan_pulls_nothing():
    plan = plan_images("fake-gcs", "3.17.2", offline=True)
    assert plan.pulls() == []
    assert isinstance(plan.base, Bootstrap)
    assert plan.roles["database"] == Build("mariadb")
    assert plan.roles["object_store"].name == "fake-gcs"
    assert {b.name for b in plan.builds()} == {"mariadb", "fake-gcs", "mlflow", "nginx"}


@pytest.mark.parametrize("offline", [False, True])
def test_seaweedfs_is_built_in_both_modes(offline):
    assert plan_images("seaweedfs", "3.17.2", offline).roles["object_store"].name == "seaweedfs"


def test_minio_has_no_offline_image():
    with pytest.raises(SetupError, match="MinIO has no offline image"):
        plan_images("minio", "3.17.2", offline=True)
    assert (
        plan_images("minio", "3.17.2", offline=False)
        .roles["object_store"]
        .ref.startswith("quay.io/minio/minio:RELEASE.")
    )


def test_every_build_has_a_dockerfile_that_takes_the_base_as_an_argument():
    for store in ("fake-gcs", "seaweedfs"):
        for build in plan_images(store, "3.17.2", offline=True).builds():
            dockerfile = (build.context / "Dockerfile").read_text()
            assert "ARG BASE_IMAGE" in dockerfile, build.name
            assert "FROM ${BASE_IMAGE}" in dockerfile, build.name


def test_cache_key_follows_context_arguments_and_base(tmp_path, monkeypatch):
    shutil.copytree(images.IMAGES_DIR / "nginx", tmp_path / "nginx")
    monkeypatch.setattr(images, "IMAGES_DIR", tmp_path)
    build = Build("nginx")
    key = context_digest(build, "sha256:base1")
    assert key == context_digest(build, "sha256:base1"), "the key must be stable"
    assert key != context_digest(build, "sha256:base2"), "a new base must rebuild"
    assert key != context_digest(Build("nginx", (("X", "1"),)), "sha256:base1")
    (tmp_path / "nginx" / "Dockerfile").write_text("FROM scratch\n")
    assert key != context_digest(build, "sha256:base1"), "a changed Dockerfile must rebuild"


def test_bootstrap_tag_depends_on_the_recipe():
    assert Bootstrap().tag() == Bootstrap().tag()
    assert Bootstrap().tag() != Bootstrap(mirror="http://mirror.example/debian").tag()
    assert Bootstrap().tag().startswith("mlflow-acceptance/debian:bookworm-")


class FakeImages:
    def __init__(self, present: set[str], pull_fails: bool) -> None:
        self.present = present
        self.pull_fails = pull_fails
        self.pulled: list[str] = []

    def get(self, ref):
        if ref not in self.present:
            raise docker.errors.ImageNotFound(ref)
        return type("Image", (), {"id": f"sha256:{ref}"})()

    def pull(self, ref):
        if self.pull_fails:
            raise docker.errors.APIError("pull", explanation="no such host")
        self.pulled.append(ref)
        self.present.add(ref)


class FakeDocker:
    def __init__(self, present: set[str], pull_fails: bool = False) -> None:
        self.images = FakeImages(present, pull_fails)


def test_a_failed_pull_is_reported_for_the_offline_fallback():
    provider = ImageProvider(FakeDocker(set(), pull_fails=True), lambda _: None, None)
    with pytest.raises(PullFailed, match="pull of debian:bookworm-slim failed: no such host"):
        provider.provide(plan_images("fake-gcs", "3.17.2", offline=False))


def test_cached_images_are_neither_pulled_nor_built():
    plan = plan_images("fake-gcs", "3.17.2", offline=True)
    base = plan.base.tag()
    base_id = f"sha256:{base}"
    present = {base} | {
        f"mlflow-acceptance/{b.name}:{context_digest(b, base_id)}" for b in plan.builds()
    }
    said: list[str] = []
    provider = ImageProvider(FakeDocker(present), said.append, None)
    refs = provider.provide(plan)
    assert set(refs) == {"base", "database", "object_store", "server", "front_door"}
    assert all("cached" in line for line in said), said
    assert provider.timings == {}


def test_the_clients_own_version_installs_the_locked_server_group():
    from importlib.metadata import version

    from mlflow_acceptance.fixtures.docker.images import server_build, uv_version

    asked = []

    def export(args):
        asked.append(args)
        return "mlflow==9.9.9 \\\n    --hash=sha256:00\n"

    build = server_build(version("mlflow"), export=export)
    assert dict(build.args) == {"MLFLOW_VERSION": version("mlflow"), "UV_VERSION": uv_version()}
    assert asked == [["--frozen", "--only-group", "server", "--no-emit-project", "--no-header"]]
    (destination, path), *_ = build.files
    assert destination == "server-requirements.txt"
    assert path.read_text().startswith("mlflow==9.9.9")


def test_the_server_and_the_suite_resolve_every_shared_package_alike():
    """The image installs uv.lock's server group: every package in it must be the version
    this suite runs (client and server cannot drift), each with its hash."""
    import shutil
    from importlib.metadata import PackageNotFoundError, version

    from mlflow_acceptance.fixtures.docker.images import locked_server_requirements
    from packaging.requirements import Requirement

    if shutil.which("uv") is None:
        pytest.skip("uv is not on PATH (the README's set-up line installs it)")
    text = locked_server_requirements().read_text()
    pins = {}
    for line in text.splitlines():
        if not line or line[0] in " #":
            continue  # hashes and comments
        requirement = Requirement(line.rstrip(" \\"))
        # markers evaluated for this Python (the image runs bookworm's 3.11)
        if requirement.marker is None or requirement.marker.evaluate():
            (specifier,) = requirement.specifier
            pins[requirement.name] = specifier.version
    assert pins.get("mlflow") == version("mlflow"), pins.get("mlflow")
    differing = {}
    for name, pinned in pins.items():
        try:
            here = version(name)
        except PackageNotFoundError:
            differing[name] = (pinned, "absent")
            continue
        if here != pinned:
            differing[name] = (pinned, here)
    assert not differing, f"server pin vs this environment: {differing}"
    assert text.count("--hash=sha256:") >= text.count("=="), "every pin carries its hashes"


class PyPI:
    """PyPI's project JSON: every release with its files' upload times."""

    def __init__(self, status: int, uploads: list[str]) -> None:
        self.status_code = status
        self.uploads = uploads

    def json(self):
        files = [{"upload_time_iso_8601": u} for u in self.uploads]
        return {"releases": {"2.22.2": files, "3.17.2": [{"upload_time_iso_8601": "x"}]}}


def test_another_version_is_resolved_as_of_its_release():
    """`--mlflow-version 2.22.2` with today's SQLAlchemy died in `mlflow db upgrade`
    (FallbackAsyncAdaptedQueuePool): an older server gets its release's dependencies."""
    from mlflow_acceptance.fixtures.docker.images import (
        release_cutoff,
        server_build,
        server_extras,
        uv_version,
    )

    answer = PyPI(200, ["2025-05-30T20:20:01.123Z", "2025-05-30T20:19:40.000Z"])
    cutoff = release_cutoff("2.22.2", fetch=lambda url: answer)
    assert cutoff == "2025-05-31T20:19:40Z"
    build = server_build("2.22.2", cutoff=lambda v: cutoff)
    assert dict(build.args) == {
        "MLFLOW_VERSION": "2.22.2",
        "UV_VERSION": uv_version(),
        "EXCLUDE_NEWER": cutoff,
        "PACKAGES": "pymysql google-cloud-storage boto3 prometheus-flask-exporter",
    }
    assert "==" not in server_extras()  # unpinned: the cut-off decides


def test_a_version_pypi_does_not_have_is_one_line():
    from mlflow_acceptance.fixtures.docker.images import release_cutoff

    with pytest.raises(SetupError, match=r"MLflow 9\.9\.9 is not on PyPI"):
        release_cutoff("9.9.9", fetch=lambda url: PyPI(200, []))
