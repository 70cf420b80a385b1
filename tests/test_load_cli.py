"""`python -m load`: bad input ends with one line (exit 2) before anything starts."""

from __future__ import annotations

import pytest
from mlflow_acceptance.load.__main__ import (
    EXIT_INPUT,
    build_parser,
    local_options,
    main,
    policy_from,
    shape_from,
)


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (
            [],
            "error: no deployment given: pass --host https://mlflow.example.com or --target local",
        ),
        (["--host", "ftp://x"], "error: --host 'ftp://x' is not an http(s) URL"),
        (["--host", "mlflow.example.com"], "is not an http(s) URL"),
        (
            ["--host", "https://x", "--ca-bundle", "/nope.pem"],
            "--ca-bundle /nope.pem: no such file",
        ),
        (["--host", "https://x", "--shape", "zig"], "unknown shape 'zig'; use one of steady"),
        (["--host", "https://x", "--duration", "soon"], "duration 'soon' is not a time span"),
        (
            ["--host", "https://x", "--users", "100", "--spawn-rate", "1"],
            "spawn rate 1/s is too low",
        ),
        (["--host", "https://x", "--wait-min", "3"], "wait times must satisfy 0 <= min <= max"),
        (["--host", "https://x", "--reader-weight", "-1"], "user weights must be 0 or more"),
        (["--host", "https://x", "--p95-ms", "quick"], "--p95-ms 'quick' is not milliseconds"),
        (["--host", "https://x", "--max-fail-ratio", "5"], "--max-fail-ratio 5.0 is not a ratio"),
        (
            ["--host", "https://x", "--processes", "2", "--expect-workers", "2"],
            "exclude each other",
        ),
        (["--target", "local", "--host", "https://x"], "--host and --target local exclude"),
        (["--target", "local", "--replicas", "zero"], "--replicas='zero' is not a whole number"),
        (["--target", "external"], "--target external needs --host URL"),
    ],
)
def test_bad_input_is_one_line(argv, line, capsys, tmp_path):
    assert main([*argv, "--reports-dir", str(tmp_path)]) == EXIT_INPUT
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert line in err
    assert "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # nothing started, no reports folder


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["--users", "many"], "error: argument --users: invalid int value: 'many' (see --help)"),
        (["--target", "kind"], "error: argument --target: invalid choice: 'kind'"),
        (["--bogus"], "error: unrecognized arguments: --bogus"),
    ],
)
def test_unparseable_arguments_are_one_line(argv, line, capsys):
    with pytest.raises(SystemExit) as exited:
        main(argv)
    assert exited.value.code == EXIT_INPUT
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert line in err


def test_slo_options_become_a_policy():
    args = build_parser().parse_args(
        [
            "--host",
            "https://x",
            "--p95-ms",
            "800",
            "--p95-ms",
            "artifact upload=2000",
            "--p99-ms",
            "artifact upload=4000",
            "--min-rps",
            "25",
        ]
    )
    policy = policy_from(args)
    assert (policy.p95_ms, policy.p99_ms, policy.min_rps) == (800, 2500, 25)
    assert policy.overrides == {"artifact upload": {"p95_ms": 2000, "p99_ms": 4000}}


def test_unreachable_host_is_one_line(capsys, tmp_path):
    code = main(["--host", "https://127.0.0.1:9", "--reports-dir", str(tmp_path)])
    assert code == EXIT_INPUT
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "cannot reach https://127.0.0.1:9" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("argv", "users"),
    [
        (["--host", "https://x"], 20),  # sized for the reference deployment's 2 x 1 CPU
        (["--target", "local"], 10),  # the local stack's 2 x 0.5 CPU
        (["--target", "local", "--replicas", "3", "--replica-cpus", "1"], 30),
        (["--target", "local", "--users", "25"], 25),  # given: kept
    ],
)
def test_default_users_follow_the_server_cpus(argv, users, tmp_path):
    args = build_parser().parse_args([*argv, "--reports-dir", str(tmp_path)])
    options = local_options(args) if args.target == "local" else None
    assert shape_from(args, options).users == users
