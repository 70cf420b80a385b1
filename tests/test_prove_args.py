"""`nox -s prove -- ...`: which arguments name breaks and which go on to pytest."""

from __future__ import annotations

import pytest

from fixtures.prove import main, split_args


@pytest.mark.parametrize(
    ("argv", "names", "extra"),
    [
        ([], [], []),
        (["--offline", "legacy-tls"], ["legacy-tls"], ["--offline"]),
        (
            ["--replicas", "3", "no-hsts", "--object-store", "fake-gcs", "-k", "redirect"],
            ["no-hsts"],
            ["--replicas", "3", "--object-store", "fake-gcs", "-k", "redirect"],
        ),
        (["no-proxy", "-x", "small-db"], ["no-proxy", "small-db"], ["-x"]),
    ],
)
def test_option_values_stay_with_their_options(argv, names, extra):
    assert split_args(argv) == (names, extra)


def test_an_unknown_break_is_one_line_before_anything_starts(capsys):
    assert main(["--offline", "legacy-tsl"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: unknown break legacy-tsl")
    assert "\n" not in err
