"""Token paging as the suites follow it: every page to the last, and a token that never
runs out ends in a failure instead of a hang."""

from __future__ import annotations

import pytest
from mlflow_acceptance.fixtures.core.mlflow_api import every_page


class Page(list):
    def __init__(self, items, token):
        super().__init__(items)
        self.token = token


def test_pages_are_followed_to_the_last():
    pages = {None: Page([1, 2], "a"), "a": Page([3, 4], "b"), "b": Page([5], None)}
    found = every_page(lambda page_token, max_results: pages[page_token], 5, max_results=2)
    assert [list(p) for p in found] == [[1, 2], [3, 4], [5]]


def test_a_token_that_never_runs_out_fails():
    """A server that ignores page_token hands back the first page and a token forever."""
    with pytest.raises(AssertionError, match="paging did not end after 3 pages of"):
        every_page(lambda page_token: Page([1, 2], "again"), 3)
