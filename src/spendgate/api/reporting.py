"""The reporting routers (analytics, exports, Anthropic Admin API), included together."""

from __future__ import annotations

from fastapi import APIRouter

from spendgate.api.admin import router as admin_router
from spendgate.api.analytics import router as analytics_router
from spendgate.api.exports import router as exports_router

routers: tuple[APIRouter, ...] = (analytics_router, exports_router, admin_router)
