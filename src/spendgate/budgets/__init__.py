"""Hard budgets: definitions, calendar periods, worst-case estimates, reserve-then-settle."""

from spendgate.budgets.model import PERIODS, SCOPES, Budget, Period, Scope
from spendgate.budgets.periods import PeriodWindow, period_window

__all__ = ["PERIODS", "SCOPES", "Budget", "Period", "PeriodWindow", "Scope", "period_window"]
