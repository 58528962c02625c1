"""spendgate: a transparent gateway for the Anthropic API that records what every Claude call cost."""

__version__ = "0.1.0"
