"""Backends: the IR lowered to an HLS project (:mod:`qfx.backends.hls`) and to Verilog (to come)."""
