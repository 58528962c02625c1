"""The ``spendgate`` command line: nouns as groups, one clear line on error."""

from spendgate.cli.main import main

__all__ = ["main"]
