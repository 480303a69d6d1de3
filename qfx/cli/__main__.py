"""``python -m qfx.cli``: the ``qfx`` command."""

from qfx.cli import entry_point

entry_point()
