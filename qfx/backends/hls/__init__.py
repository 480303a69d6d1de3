"""IR -> Vivado/Vitis HLS project (templates in hls/templates, layer library in hls/include/qfx), and its
C-simulation with g++."""

from .csim import CsimResult, csim, csim_run
from .generate import generate, hls_root, read_project

__all__ = ["CsimResult", "csim", "csim_run", "generate", "hls_root", "read_project"]
