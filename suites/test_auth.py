"""Who may do what: anonymous callers, ordinary users and the admin of MLflow's basic-auth app.

Without auth, anyone who reaches the front door may write and delete; the reference
deployment relies on its ingress for that, so the default is to report it as a hardening
finding and ``--require-auth`` makes it a failure. With auth (``--auth basic`` on the local
target, ``--auth-username``/``--auth-password`` on an existing deployment) every route family
must refuse anonymous callers, on every replica, and users must see only what they made or
were granted: a READ grant reads but does not write, the admin does everything. A replica
started without the auth app behind the same front door, or MLflow's default permission
(READ for every user), is how a deployment fails that.
"""

from __future__ import annotations

import pytest
from mlflow_acceptance.fixtures.core import mlflow_api
from mlflow_acceptance.fixtures.core.auth import Credentials
from mlflow_acceptance.fixtures.core.capabilities import settled_replicas
from mlflow_acceptance.suites.route_families import FAMILIES, MLFLOW_3, route

pytestmark = pytest.mark.acceptance

GET_EXPERIMENT = f"{mlflow_api.API}/experiments/get"
SET_EXPERIMENT_TAG = f"{mlflow_api.API}/experiments/set-experiment-tag"
# Refused for want of credentials, or (an authenticating ingress) of permission.
REFUSED = (401, 403)
# Families the auth app leaves open on purpose: the UI's scripts and styles.
OPEN_BY_DESIGN = {"static-files"}
WITHOUT_AUTH = (
    "the deployment runs without MLflow's auth app (local target: --auth basic; an existing "
    "deployment with it: --auth-username and --auth-password of an admin)"
)


def require_auth_app(deployment):
    if deployment.credentials is None:
        pytest.skip(WITHOUT_AUTH)


def test_anonymous_callers_cannot_write(deployment, run_state, hardening):
    """An experiment created with no credentials at all."""
    anonymous = deployment.new_http(anonymous=True)
    name = deployment.unique_name("anonymous-write")
    response = anonymous.post(mlflow_api.CREATE_EXPERIMENT, json={"name": name})
    if response.status_code in REFUSED:
        return
    assert response.status_code == 200, (
        f"an anonymous create-experiment answered HTTP {response.status_code} "
        f"{response.text[:160]!r}, neither a refusal (401/403) nor a success"
    )
    created = response.json()["experiment_id"]
    deployment.http.post(mlflow_api.DELETE_EXPERIMENT, json={"experiment_id": created})
    finding = f"an anonymous caller created experiment {name} (id {created}) through the front door"
    assert deployment.credentials is None, (
        f"{finding}, although the deployment runs MLflow's auth app: a replica or route "
        "without it is reachable"
    )
    advice = (
        "run the server with --app-name basic-auth (or put an authenticating proxy in front): "
        "anyone who reaches the front door may write and delete"
    )
    assert not run_state.options.require_auth, f"{finding} (--require-auth): {advice}"
    hardening(finding, advice)


@pytest.mark.parametrize("family", FAMILIES)
def test_every_route_family_refuses_anonymous_callers(family, deployment, logged_run):
    require_auth_app(deployment)
    if family in MLFLOW_3:
        deployment.require_server("3.0.0", f"the {family} routes")
    sent = route(family, deployment, logged_run)
    response = deployment.new_http(anonymous=True).request(sent.method, sent.path, **sent.kwargs)
    if family in OPEN_BY_DESIGN:
        assert response.status_code == sent.status, (
            f"{sent.method} {sent.path} answered an anonymous caller HTTP "
            f"{response.status_code}: the auth app serves the UI's assets to everyone, so the "
            "login prompt can load"
        )
        return
    assert response.status_code in REFUSED, (
        f"{sent.method} {sent.path} ({family}) answered an anonymous caller HTTP "
        f"{response.status_code} {response.text[:120]!r}, not 401: {sent.breaks} is open "
        "to anyone who reaches the front door"
    )


def test_every_replica_refuses_anonymous_callers(deployment):
    """One replica without the auth app behind the same front door opens everything for the
    calls that land on it: each replica, reached directly, must refuse and then serve."""
    require_auth_app(deployment)
    controller = deployment.require("replica_controller", "cannot reach replicas one by one")
    path = f"{mlflow_api.SEARCH_EXPERIMENTS}?max_results=1"
    for replica in settled_replicas(controller):
        anonymous = controller.request(replica.name, path)
        assert anonymous.status in REFUSED, (
            f"{replica.name} answered an anonymous GET {path} with HTTP {anonymous.status}: "
            "it runs without the auth app (--app-name basic-auth), so every call the front "
            "door sends it is open to anyone"
        )
        admin = controller.request(replica.name, path, headers=deployment.replica_headers())
        assert admin.status == 200, (
            f"{replica.name} refused the admin ({admin.status} {admin.text[:120]!r}): the "
            "replicas do not share one auth database"
        )


@pytest.fixture
def users(deployment):
    """Ordinary users of this run, made and removed by the admin with MLflow's own client."""
    from mlflow.server import get_app_client

    admin = get_app_client("basic-auth", tracking_uri=deployment.tracking_uri)
    made: list[Credentials] = []

    def make(role: str) -> Credentials:
        user = Credentials.fresh(deployment.unique_name(role))
        admin.create_user(user.username, user.password)
        made.append(user)
        return user

    yield make, admin
    for user in made:
        admin.delete_user(user.username)


def status_of(deployment, user: Credentials, method: str, path: str, **kwargs) -> int:
    return deployment.new_http(as_user=user).request(method, path, **kwargs).status_code


def test_users_see_only_what_they_made_or_were_granted(deployment, users):
    require_auth_app(deployment)
    make, admin = users
    owner, reader, stranger = make("owner"), make("reader"), make("stranger")
    created = deployment.new_http(as_user=owner).post(
        mlflow_api.CREATE_EXPERIMENT, json={"name": deployment.unique_name("owned")}
    )
    assert created.status_code == 200, (
        f"a new user could not create an experiment: HTTP {created.status_code} "
        f"{created.text[:160]!r}"
    )
    experiment_id = created.json()["experiment_id"]
    read = ("GET", GET_EXPERIMENT, {"params": {"experiment_id": experiment_id}})
    write = (
        "POST",
        SET_EXPERIMENT_TAG,
        {"json": {"experiment_id": experiment_id, "key": "k", "value": "v"}},
    )

    def may(user: Credentials, call) -> int:
        method, path, kwargs = call
        return status_of(deployment, user, method, path, **kwargs)

    seen = may(stranger, read)
    assert seen == 403, (
        f"user {stranger.username} read experiment {experiment_id} of {owner.username} with "
        f"HTTP {seen} though it was never granted to them (expected 403): the auth app's "
        "default_permission lets every user read everything (set it to NO_PERMISSIONS)"
    )
    admin.grant_user_permission(reader.username, "experiment", experiment_id, "READ")
    assert may(reader, read) == 200, f"{reader.username} was granted READ and cannot read"
    written = may(reader, write)
    assert written == 403, (
        f"user {reader.username}, granted READ only, set a tag on experiment {experiment_id} "
        f"(HTTP {written}, expected 403)"
    )
    assert may(owner, write) == 200, f"{owner.username} cannot write their own experiment"
    admin_write = deployment.http.request(write[0], write[1], **write[2])
    assert admin_write.status_code == 200, f"the admin cannot write: {admin_write.text[:160]}"

    controller = deployment.replica_controller
    if controller is not None:  # the same answers from every replica
        path = f"{GET_EXPERIMENT}?experiment_id={experiment_id}"
        for replica in settled_replicas(controller):
            for user, expected in ((reader, 200), (stranger, 403)):
                answer = controller.request(replica.name, path, headers=user.header)
                assert answer.status == expected, (
                    f"{replica.name} answered {user.username}'s read of experiment "
                    f"{experiment_id} with HTTP {answer.status}, expected {expected} as the "
                    "front door gave: the replicas do not agree on permissions"
                )
