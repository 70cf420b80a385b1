"""Deliberate breaks of the local stack apply for real, or stop the run saying why."""

from __future__ import annotations

import pytest

from fixtures.core.errors import SetupError
from fixtures.targets.local.breaks import BREAKS, BrokenStack, parse
from fixtures.targets.local.stack import NGINX_TEMPLATE

NGINX_CONF = NGINX_TEMPLATE.read_text()


@pytest.mark.parametrize(
    ("name", "gone", "added"),
    [
        ("legacy-tls", "ssl_protocols TLSv1.2 TLSv1.3;", "TLSv1 TLSv1.1"),
        ("no-hsts", "Strict-Transport-Security", None),
        ("no-redirect", None, "proxy_pass $mlflow_plain;"),
        ("strip-headers", None, "proxy_hide_header X-Content-Type-Options;"),
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


def test_every_check_a_break_names_exists():
    """prove hands these ids to pytest, which refuses an id that names no test: a renamed
    check must not turn a caught break into a silent miss."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    for name, broken in BREAKS.items():
        for check in broken.catches:
            path, _, function = check.partition("::")
            assert (root / path).is_file(), f"{name}: {path} does not exist"
            if function:
                tree = ast.parse((root / path).read_text())
                names = {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}
                assert function in names, f"{name}: {check} names no test"
