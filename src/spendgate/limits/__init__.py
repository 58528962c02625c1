"""Rate limits: requests and tokens per minute per key, team, user, project or globally."""

from spendgate.limits.model import EACH, METRICS, SCOPES, Metric, RateLimit, Scope

__all__ = ["EACH", "METRICS", "SCOPES", "Metric", "RateLimit", "Scope"]
