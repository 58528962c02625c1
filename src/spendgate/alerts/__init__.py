"""Alerts: budget thresholds, exhaustion forecasts and spend spikes, sent to channels."""

from spendgate.alerts.model import ALERT_KINDS, CHANNEL_KINDS, Alert, Channel, Delivery

__all__ = ["ALERT_KINDS", "CHANNEL_KINDS", "Alert", "Channel", "Delivery"]
