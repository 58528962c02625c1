"""spendgate's benchmark: ``python -m bench`` (``make bench``); see docs/benchmarks.md."""
