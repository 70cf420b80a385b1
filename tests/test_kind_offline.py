"""The offline kind build plan: Go wrapper modules, the node's image names, the docker shim,
charts and options. Running it is by hand (docs/kubernetes.md); these keep its logic true."""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import tarfile
from pathlib import Path

import pytest
import yaml
from mlflow_acceptance.fixtures.core.errors import SetupError
from mlflow_acceptance.fixtures.k8s.addons import addons_for
from mlflow_acceptance.fixtures.registry import options_for
from mlflow_acceptance.fixtures.targets.kind.kind_cluster import render_config
from mlflow_acceptance.fixtures.targets.kind.offline import programs
from mlflow_acceptance.fixtures.targets.kind.offline.go import (
    GoProgram,
    replacements,
    wrapper_go_mod,
)
from mlflow_acceptance.fixtures.targets.kind.offline.kit import (
    OfflineKit,
    check_charts,
    local_chart,
)
from mlflow_acceptance.fixtures.targets.kind.offline.node_image import (
    KUBE_IMAGES,
    OfflineNodeImage,
    multi_image_archive,
    qualified,
    static_seccomp,
)
from mlflow_acceptance.fixtures.targets.kind.offline.shim import (
    SHIM_DIR,
    missing_capabilities,
    shim_environment,
)

ROOT = Path(__file__).resolve().parents[1]
OUR_VM = int("000001fffeffffff", 16)  # CapBnd here: all but CAP_SYS_RESOURCE
FULL = (1 << 41) - 1
K8S_EDIT = {
    "Replace": [
        {"Old": {"Path": "k8s.io/api"}, "New": {"Path": "./staging/src/k8s.io/api"}},
        {"Old": {"Path": "k8s.io/client-go"}, "New": {"Path": "./staging/src/k8s.io/client-go"}},
    ]
}


# ---- Go ------------------------------------------------------------------------------------
def test_kubernetes_staging_folders_become_their_published_versions():
    assert replacements(K8S_EDIT, "v1.36.1") == [
        "k8s.io/api => k8s.io/api v0.36.1",
        "k8s.io/client-go => k8s.io/client-go v0.36.1",
    ]


def test_a_fork_replacement_is_carried_over_as_upstream_wrote_it():
    edit = {
        "Replace": [
            {
                "Old": {"Path": "github.com/abbot/go-http-auth"},
                "New": {"Path": "github.com/containous/go-http-auth", "Version": "v0.4.1"},
            },
            {
                "Old": {"Path": "github.com/x/y", "Version": "v1.0.0"},
                "New": {"Path": "github.com/z/y", "Version": "v1.0.1"},
            },
        ]
    }
    assert replacements(edit, "v3.6.12") == [
        "github.com/abbot/go-http-auth => github.com/containous/go-http-auth v0.4.1",
        "github.com/x/y v1.0.0 => github.com/z/y v1.0.1",
    ]


def test_a_sibling_folder_replacement_leaves_the_required_published_version():
    edit = {
        "Replace": [
            {"Old": {"Path": "go.etcd.io/etcd/api/v3"}, "New": {"Path": "../api"}},
            {"Old": {"Path": "go.etcd.io/etcd"}, "New": {"Path": "./FORBIDDEN_DEPENDENCY"}},
        ]
    }
    assert replacements(edit, "v3.6.8") == []


def test_wrapper_module_keeps_upstream_go_and_godebug_lines():
    upstream = "module k8s.io/kubernetes\n\ngo 1.26.0\n\ngodebug default=go1.26\n"
    program = programs.kubernetes("kubeadm")
    text = wrapper_go_mod(program, upstream, K8S_EDIT)
    assert "\ngo 1.26.0\n" in text
    assert "godebug default=go1.26" in text
    assert "require k8s.io/kubernetes v1.36.1" in text
    assert "\tk8s.io/api => k8s.io/api v0.36.1" in text


def test_kubernetes_binaries_carry_the_version_kubeadm_checks():
    flags = " ".join(programs.kubernetes("kubelet").ldflags)
    assert "k8s.io/component-base/version.gitVersion=v1.36.1" in flags
    assert "k8s.io/client-go/pkg/version.gitVersion=v1.36.1" in flags
    assert "gitMinor=36" in flags


def test_a_program_key_changes_with_anything_that_decides_its_binary():
    program = programs.KIND
    same = GoProgram(program.name, program.package, program.module, program.version)
    assert program.key("go1.26.8") == same.key("go1.26.8")
    assert program.key("go1.26.8") != program.key("go1.26.9")
    other = GoProgram(program.name, program.package, program.module, "v0.31.0")
    assert other.key("go1.26.8") != program.key("go1.26.8")


# ---- node image ----------------------------------------------------------------------------
def test_qualified_names_are_what_kind_compares():
    assert qualified("busybox") == "docker.io/library/busybox"
    assert qualified("kindest/kindnetd") == "docker.io/kindest/kindnetd"
    assert qualified("registry.k8s.io/etcd") == "registry.k8s.io/etcd"
    assert qualified("localhost/x") == "localhost/x"


def _docker_save(path: Path, images: dict[str, list[str]]) -> None:
    """A docker-save archive: per image a layer folder and the tags it carries."""
    manifest = [
        {"Config": f"{layer}.json", "RepoTags": tags, "Layers": [f"{layer}/layer.tar"]}
        for layer, tags in images.items()
    ]
    with tarfile.open(path, "w") as archive:
        for name, data in [
            ("manifest.json", json.dumps(manifest).encode()),
            *((f"{layer}/layer.tar", b"layer") for layer in images),
        ]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))


def test_multi_image_archive_puts_repositories_first_with_every_name(tmp_path):
    source, target = tmp_path / "in.tar", tmp_path / "out.tar"
    _docker_save(
        source,
        {
            "aaa": ["registry.k8s.io/pause:3.10", "registry.k8s.io/pause:3.10.2"],
            "bbb": ["kindest/kindnetd:v1"],
        },
    )
    names = multi_image_archive(source, target)
    assert names == [
        "docker.io/kindest/kindnetd:v1",
        "registry.k8s.io/pause:3.10",
        "registry.k8s.io/pause:3.10.2",
    ]
    with tarfile.open(target) as archive:
        members = archive.getnames()
        assert members[0] == "repositories"
        assert "aaa/layer.tar" in members
        assert "manifest.json" in members
        repositories = json.load(archive.extractfile("repositories"))
    assert repositories["registry.k8s.io/pause"] == {"3.10": "aaa", "3.10.2": "aaa"}


class FakeGo:
    def __init__(self, root: Path) -> None:
        self.root = root

    def build(self, program: GoProgram) -> Path:
        path = self.root / "bin" / program.name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(program.name)
        return path

    def module_info(self, module: str, version: str) -> dict:
        return {"Dir": str(self.root / "mod")}


def test_the_node_plan_names_every_image_kubeadm_and_kind_start(tmp_path, monkeypatch):
    node = OfflineNodeImage(None, FakeGo(tmp_path), None, tmp_path / "cache", print)
    monkeypatch.setattr(node, "pause", lambda: tmp_path / "pause")
    monkeypatch.setattr(node, "kind_files", lambda: tmp_path / "files")
    plan, names = node.plan()
    tags = {tag for role in names.values() for tag in role}
    for name in (*KUBE_IMAGES, "kube-proxy"):
        assert f"registry.k8s.io/{name}:{programs.KUBERNETES}" in tags
    assert {
        programs.ETCD_IMAGE,
        programs.COREDNS_IMAGE,
        programs.KINDNETD_IMAGE,
        programs.LOCAL_PATH_IMAGE,
        programs.LOCAL_PATH_HELPER_IMAGE,
        *programs.PAUSE_IMAGES,
    } <= tags
    assert set(names) <= set(plan.roles)
    assert "kind-base" in plan.roles
    base_files = dict(plan.roles["kind-base"].files)
    assert {"bin/containerd", "bin/runc", "bin/crictl", "bin/cni/bridge", "files"} <= set(
        base_files
    )
    assert dict(plan.roles["pause"].args)["RUN_AS"] == "65535:65535"
    assert plan.offline


def fake_gcc(tmp_path: Path, prints: str) -> str:
    gcc = tmp_path / "gcc"
    gcc.write_text(f"#!/bin/sh\necho '{prints}'\n")
    gcc.chmod(0o755)
    return str(gcc)


def test_a_gcc_without_static_libseccomp_is_refused_before_any_build(tmp_path, monkeypatch):
    """runc links libseccomp.a: without it the build would fail half an hour in."""
    assert not static_seccomp(fake_gcc(tmp_path, "libseccomp.a"))  # gcc's "not found"
    archive = tmp_path / "libseccomp.a"
    archive.write_bytes(b"!<arch>\n")
    assert static_seccomp(fake_gcc(tmp_path, str(archive)))
    node = OfflineNodeImage(None, FakeGo(tmp_path), None, tmp_path / "cache", print)
    monkeypatch.setattr(node.go, "check", lambda: None, raising=False)
    monkeypatch.setenv("PATH", f"{tmp_path}/bin")
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "gcc").write_text("#!/bin/sh\necho libseccomp.a\n")
    (tmp_path / "bin" / "gcc").chmod(0o755)
    with pytest.raises(SetupError, match=r"no libseccomp\.a") as refused:
        node.check()
    assert "apt-get install libseccomp-dev" in refused.value.hint


# ---- the docker shim -----------------------------------------------------------------------
def test_missing_capabilities_name_what_privileged_would_ask_for():
    assert missing_capabilities(OUR_VM) == ["CAP_SYS_RESOURCE"]
    assert missing_capabilities(FULL) == []


def test_the_shim_goes_on_path_only_where_it_is_needed(tmp_path):
    tools = tmp_path / "tools"
    needed = shim_environment([tools], bounding=OUR_VM, environ={"PATH": "/usr/bin"})
    assert needed["PATH"].split(os.pathsep) == [str(tools), str(SHIM_DIR), "/usr/bin"]
    full = shim_environment([tools], bounding=FULL, environ={"PATH": "/usr/bin"})
    assert full["PATH"].split(os.pathsep) == [str(tools), "/usr/bin"]


def _shim(tmp_path: Path, *args: str) -> list[str]:
    """Run the shim with a fake docker that prints its arguments one per line."""
    fake = tmp_path / "real"
    fake.mkdir(exist_ok=True)
    (fake / "docker").write_text('#!/bin/sh\nfor a in "$@"; do echo "$a"; done\n')
    (fake / "docker").chmod(0o755)
    env = {"PATH": f"{SHIM_DIR}{os.pathsep}{fake}{os.pathsep}/usr/bin:/bin"}
    done = subprocess.run(
        [str(SHIM_DIR / "docker"), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    return done.stdout.splitlines()


def test_shim_replaces_privileged_on_run_with_the_hosts_capabilities(tmp_path):
    out = _shim(tmp_path, "run", "--name", "node", "--privileged", "img:1")
    assert "--privileged" not in out
    assert out[:3] == ["run", "--name", "node"]
    assert out[-1] == "img:1"
    assert "SYS_ADMIN" in out
    assert "seccomp=unconfined" in out
    assert "a *:* rwm" in out
    bounding = int(
        next(line for line in Path("/proc/self/status").read_text().splitlines()
             if line.startswith("CapBnd:")).split()[1], 16
    )  # fmt: skip
    assert ("SYS_RESOURCE" in out) == bool(bounding >> 24 & 1)


def test_shim_drops_privileged_on_exec_and_passes_the_rest(tmp_path):
    assert _shim(tmp_path, "exec", "--privileged", "node", "true") == ["exec", "node", "true"]
    assert _shim(tmp_path, "ps", "-a", "--privileged") == ["ps", "-a", "--privileged"]


# ---- kind config ---------------------------------------------------------------------------
def test_offline_config_puts_every_node_on_the_built_image_and_allows_cgroup_v1():
    source = (ROOT / "kind-config.yaml").read_text()
    text, changes = render_config(source, "mlflow-acceptance/kind-node:v1.36.1-abc", True)
    data = yaml.safe_load(text)
    assert {n["image"] for n in data["nodes"]} == {"mlflow-acceptance/kind-node:v1.36.1-abc"}
    assert data["nodes"][0]["extraPortMappings"]  # the rest is kept
    assert "failCgroupV1: false" in data["kubeadmConfigPatches"][0]
    assert len(changes) == 2
    assert render_config(source, None, False) == (source, [])


# ---- charts and options --------------------------------------------------------------------
CRD = {"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition"}


def _chart(root: Path, name: str, app_version: str, crds: bool = True) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    meta = {"name": name, "version": "1.0.0", "appVersion": app_version}
    (folder / "Chart.yaml").write_text(yaml.safe_dump(meta))
    if crds:
        (folder / "templates" / "crds").mkdir(parents=True)
        (folder / "templates" / "crds" / "a.yaml").write_text(yaml.safe_dump(CRD))
    return folder


def test_missing_charts_are_named_in_one_line(tmp_path):
    charts = {"metrics-server": _chart(tmp_path, "metrics-server", "0.8.1")}
    with pytest.raises(SetupError) as caught:
        check_charts(addons_for("traefik"), charts)
    message = str(caught.value)
    assert "\n" not in message.split(" (hint")[0]
    for flag in ("--traefik-chart", "--cert-manager-chart", "--external-secrets-chart"):
        assert flag in message
    assert "--metrics-server-chart" not in message


def test_a_chart_for_another_version_than_the_build_is_refused(tmp_path):
    charts = {
        "metrics-server": _chart(tmp_path, "metrics-server", "0.8.1"),  # patch differs: fine
        "traefik": _chart(tmp_path, "traefik", "v3.6.12"),
        "cert-manager": _chart(tmp_path, "cert-manager", "v1.21.1"),
        "external-secrets": _chart(tmp_path, "external-secrets", "v2.9.0"),
    }
    with pytest.raises(SetupError, match=r"chart 1\.0\.0 for external-secrets v2\.9\.0, but"):
        check_charts(addons_for("traefik"), charts)
    charts["external-secrets"] = _chart(tmp_path / "b", "external-secrets", "v0.16.2")
    check_charts(addons_for("traefik"), charts)


@pytest.mark.parametrize("offline", [True, False], ids=["offline", "online"])
def test_a_chart_without_the_crds_its_add_on_needs_is_refused(tmp_path, offline):
    """A chart copied from its project's source tree (External Secrets' templates/crds holds
    only a README there) installs no CRDs: the add-on crash-looped ("no matches for kind
    ExternalSecret") until helm gave up 10 minutes later, seen on kind offline. An online
    run given that folder would do the same: the options of both refuse it in one line."""
    charts = {
        "metrics_server_chart": _chart(tmp_path, "metrics-server", "0.8.0", crds=False),
        "traefik_chart": _chart(tmp_path, "traefik", "v3.6.12"),
        "external_secrets_chart": _chart(tmp_path, "external-secrets", "v0.16.2", crds=False),
    }
    with pytest.raises(SetupError) as caught:
        options_for("kind", offline=offline, edge="gateway", **charts)
    line = str(caught.value)
    assert line.startswith(
        f"--external-secrets-chart {charts['external_secrets_chart']} holds no "
        "CustomResourceDefinition"
    )
    assert "helm pull external-secrets --repo https://charts.external-secrets.io" in line
    (charts["external_secrets_chart"] / "crds").mkdir()  # helm's own crds/ folder counts too
    bundle = charts["external_secrets_chart"] / "crds" / "bundle.yaml"
    bundle.write_text(yaml.safe_dump(CRD))
    options_for("kind", offline=offline, edge="gateway", **charts)  # metrics-server needs none


def test_a_folder_that_is_no_chart_is_named_before_its_crds(tmp_path):
    with pytest.raises(SetupError, match=r"is not a chart folder: it has no Chart\.yaml"):
        options_for("kind", cert_manager_chart=tmp_path)


def test_a_packaged_chart_is_read_from_its_archive(tmp_path):
    def packaged(app_version: str) -> Path:
        folder = _chart(tmp_path / app_version, "traefik", app_version)
        archive = tmp_path / f"traefik-{app_version}.tgz"
        with tarfile.open(archive, "w:gz") as out:
            out.add(folder, arcname="traefik")
        return archive

    charts = {
        "metrics-server": _chart(tmp_path, "metrics-server", "0.8.0"),
        "cert-manager": _chart(tmp_path, "cert-manager", "v1.21.1"),
        "external-secrets": _chart(tmp_path, "external-secrets", "0.16.2"),
        "traefik": packaged("v3.6.12"),
    }
    check_charts(addons_for("traefik"), charts)
    charts["traefik"] = packaged("v3.7.13")
    with pytest.raises(SetupError, match=r"for traefik v3\.7\.13, but --offline runs v3\.6\.12"):
        check_charts(addons_for("traefik"), charts)


def test_offline_mlflow_chart_must_be_local(tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_CHART", raising=False)
    with pytest.raises(SetupError, match="give --chart PATH"):
        local_chart(None)
    with pytest.raises(SetupError, match="'community-charts/mlflow' is neither"):
        local_chart("community-charts/mlflow")
    assert local_chart(str(tmp_path)).is_local


def test_offline_defaults_and_refusals():
    options = options_for("kind", offline=True)
    assert (options.object_store, options.edge) == ("fake-gcs", "traefik")
    assert options_for("kind").edge == "ingress-nginx"
    with pytest.raises(SetupError, match="MinIO image, which --offline forbids"):
        options_for("kind", offline=True, object_store="minio")
    with pytest.raises(SetupError, match="--edge ingress-nginx cannot be built offline"):
        options_for("kind", offline=True, edge="ingress-nginx")


def test_offline_values_point_each_chart_at_its_built_image():
    refs = {
        "metrics-server": "mlflow-acceptance/kind-component:aaa",
        "external-secrets": "mlflow-acceptance/kind-component:bbb",
        "traefik": "mlflow-acceptance/kind-component:ccc",
    }
    values = OfflineKit.addon_values(refs)
    assert values["metrics-server"]["image"]["tag"] == "aaa"
    eso = values["external-secrets"]
    assert eso["image"] == eso["webhook"]["image"] == eso["certController"]["image"]
    assert values["traefik"]["image"]["registry"] == "docker.io"
    assert values["traefik"]["image"]["repository"] == "mlflow-acceptance/kind-component"
    # Traefik's chart semverCompares the image tag unless versionOverride says the version.
    assert re.fullmatch(r"v\d+\.\d+\.\d+", values["traefik"]["versionOverride"])
    assert values["traefik"]["versionOverride"] == programs.TRAEFIK


def test_workflows_pin_the_tool_versions_of_versions_py():
    """One home per version: the kind workflow installs what fixtures/k8s/versions.py pins."""
    from mlflow_acceptance.fixtures.k8s.versions import HELM_VERSION, KIND_VERSION

    workflow = yaml.safe_load((ROOT / ".github/workflows/kind.yml").read_text())
    steps = [step for job in workflow["jobs"].values() for step in job["steps"]]
    pinned = {
        step["uses"].split("@")[0]: step.get("with", {}).get("version")
        for step in steps
        if "uses" in step
    }
    assert pinned["helm/kind-action"] == KIND_VERSION
    assert pinned["azure/setup-helm"] == HELM_VERSION
