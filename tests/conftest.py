"""Shared test plumbing: the g++ toolchain check, and a summary of what the exactness tests compared."""

import os
import signal
import threading
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


# Longest single test cold on 2 cores is a few minutes (Yosys, Verilator builds); past this it is stuck, and one
# failing test is better than a CI run killed at its time limit with no name for the culprit.
TEST_TIMEOUT_S = int(os.environ.get("QFX_TEST_TIMEOUT_S", "1200"))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item):
    """Fail a test that runs past TEST_TIMEOUT_S (SIGALRM, main thread only), naming it."""
    if not hasattr(signal, "SIGALRM") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_alarm(signum, frame):
        raise TimeoutError(f"{item.nodeid} ran past {TEST_TIMEOUT_S} s (QFX_TEST_TIMEOUT_S)")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(TEST_TIMEOUT_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
