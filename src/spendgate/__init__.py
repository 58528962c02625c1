"""spendgate: a transparent Anthropic API gateway that records what every Claude call cost."""

__version__ = "0.1.0"
