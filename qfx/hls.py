"""``qfx.hls``: the HLS backend's public API (see :mod:`qfx.backends.hls`)."""

from qfx.backends.hls import CsimResult, csim, csim_run, generate, read_project

__all__ = ["CsimResult", "csim", "csim_run", "generate", "read_project"]
