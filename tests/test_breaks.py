"""Deliberate breaks of the local stack apply for real, or stop the run saying why."""

from __future__ import annotations

import pytest
from mlflow_acceptance.fixtures.core.errors import SetupError
from mlflow_acceptance.fixtures.targets.local.breaks import BREAKS, BrokenStack, parse
from mlflow_acceptance.fixtures.targets.local.stack import NGINX_TEMPLATE

NGINX_CONF = NGINX_TEMPLATE.read_text()


@pytest.mark.parametrize(
    ("name", "gone", "added"),
    [
        ("legacy-tls", "ssl_protocols TLSv1.2 TLSv1.3;", "TLSv1 TLSv1.1"),
        ("no-hsts", "Strict-Transport-Security", None),
        ("no-redirect", None, "proxy_pass $mlflow_plain;"),
        ("strip-headers", None, "proxy_hide_header X-Content-Type-Options;"),
        ("no-upstream-retry", "proxy_next_upstream error", "proxy_next_upstream off;"),
        ("hsts-one-location", None, 'add_header Cache-Control "no-store";'),
        ("api-2-only", None, "location ~ ^/(ajax-api|api/3\\.0|graphql|v1/|static-files) {"),
    ],
)
def test_front_door_breaks_change_the_real_config(name, gone, added):
    broken = parse(name).nginx(NGINX_CONF)
    if gone:
        assert gone not in broken
    if added:
        assert added in broken
    assert broken != NGINX_CONF


def test_a_break_whose_anchor_drifted_stops_the_run():
    drifted = NGINX_CONF.replace("ssl_protocols TLSv1.2 TLSv1.3;", "ssl_protocols TLSv1.3;")
    with pytest.raises(SetupError, match="break legacy-tls cannot apply"):
        parse("legacy-tls").nginx(drifted)


def test_unknown_break_names_are_refused_with_the_choices():
    with pytest.raises(SetupError, match="unknown break nope") as error:
        parse("no-hsts,nope")
    assert "no-hsts" in error.value.line()
    assert parse(None) == BrokenStack()
    assert not parse(None)


def test_server_side_breaks_compile():
    code = BrokenStack(frozenset(BREAKS)).sitecustomize()
    assert code is not None
    compile(code, "sitecustomize.py", "exec")


def test_every_check_a_break_names_exists_and_says_what_its_failure_names():
    """prove hands these ids to pytest, which refuses an id that names no test: a renamed
    check must not turn a caught break into a silent miss. And each says which words its
    failure message must hold, or any failure would count as catching the break."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    for name, broken in BREAKS.items():
        assert broken.catches, f"{name}: no check is expected to catch it"
        for catch in broken.catches:
            assert catch.fragments, f"{name}: {catch.check} names no words to look for"
            assert all(f.strip() for f in catch.fragments), f"{name}: {catch.check}: empty"
            path, _, function = catch.check.partition("::")
            assert (root / path).is_file(), f"{name}: {path} does not exist"
            if function:
                tree = ast.parse((root / path).read_text())
                names = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
                test = function.split("[", 1)[0]  # a parametrized id's parameters
                assert test in names, f"{name}: {catch.check} names no test"
