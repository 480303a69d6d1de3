"""Package layout (everything else is in pyproject.toml): the ``qfx`` packages, plus the top-level ``hls/`` and
``boards/`` folders shipped as package data under ``qfx/_data/`` (see ``qfx.resources``)."""

from setuptools import find_packages, setup

DATA = {"qfx._data.hls": "hls", "qfx._data.boards": "boards"}

setup(
    packages=[*find_packages(include=["qfx", "qfx.*"]), *DATA],
    package_dir=DATA,
    # the HLS/Verilog libraries and templates, the board files, and the fused CPU cast kernel (built at first use)
    package_data={"qfx._data.hls": ["**/*"], "qfx._data.boards": ["*.toml", "*.md"], "qfx.native": ["*.cpp"]},
    exclude_package_data={"": ["__pycache__/*", "*.pyc"]},
)
