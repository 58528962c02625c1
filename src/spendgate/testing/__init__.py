"""Test doubles that speak real wire formats; see :class:`FakeUpstream`."""

from spendgate.testing.scenario import Scenario
from spendgate.testing.served import Served
from spendgate.testing.upstream import FakeUpstream, create_app

__all__ = ["FakeUpstream", "Scenario", "Served", "create_app"]
