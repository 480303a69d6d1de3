"""Shared test plumbing: the g++ toolchain check, and a summary of what the exactness tests compared."""

from collections.abc import Callable

import pytest

from qfx.sim import apfixed

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


@pytest.fixture(scope="module")
def toolchain() -> None:
    """Skip a test that needs g++ and the ap_fixed headers when either is missing, naming the missing tool."""
    try:
        apfixed.gxx()
    except RuntimeError:
        pytest.skip("g++ not found")
    try:
        apfixed.headers_dir()
    except RuntimeError:
        pytest.skip("hls4ml (ap_fixed headers) not installed")
