"""Price files the tests load, as TOML text."""

from __future__ import annotations

# A negotiated price for Claude Haiku 4.5 that applies in February 2026 only (10 %
# below list: $0.90 / $4.50 per million input / output tokens, against $1 / $5).
HAIKU_CONTRACT_FEBRUARY = """
[[model]]
id = "claude-haiku-4-5"

[[model.price]]
effective_from = 2026-02-01
effective_until = 2026-03-01
input = 0.9
output = "4.5"
cache_write_5m = "1.125"
cache_write_1h = "1.8"
cache_read = "0.09"
source = "contract #42"
"""
