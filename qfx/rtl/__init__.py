"""Verilog for QFX models and its simulation with cocotb (Verilator, Icarus Verilog)."""

from qfx.rtl.generate import generate, read_rtl
from qfx.rtl.runner import SimResult, SimulatorError, simulate, simulate_codes

__all__ = ["SimResult", "SimulatorError", "generate", "read_rtl", "simulate", "simulate_codes"]
