"""Shared test plumbing: a summary section that reports what the exactness tests compared."""

from collections.abc import Callable

import pytest

_SUMMARY: list[str] = []


@pytest.fixture
def summary() -> Callable[[str], None]:
    """Record a line for the 'exactness' section printed at the end of the run."""
    return _SUMMARY.append


def pytest_terminal_summary(terminalreporter) -> None:
    if _SUMMARY:
        terminalreporter.section("exactness")
        for line in _SUMMARY:
            terminalreporter.write_line(line)
