"""Simulation against the real thing: C++ programs compiled with g++ against the Xilinx ``ap_fixed`` headers."""
