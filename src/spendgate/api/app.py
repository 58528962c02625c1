"""The management app: health, the request log and (later) analytics, keys, budgets.

A thin shell: handlers validate input, call the store or a library function,
and shape the answer. No SQL here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from spendgate import __version__
from spendgate.api.access import authorize
from spendgate.api.alerts import router as alerts_router
from spendgate.api.auth import docs_router
from spendgate.api.auth import router as auth_router
from spendgate.api.budgets import router as budgets_router
from spendgate.api.dashboard import DashboardFiles
from spendgate.api.errors import ApiError
from spendgate.api.imports import router as imports_router
from spendgate.api.keys import router as keys_router
from spendgate.api.limits import router as limits_router
from spendgate.api.operations import router as operations_router
from spendgate.api.reporting import routers as reporting_routers
from spendgate.api.requests import router as requests_router
from spendgate.api.users import router as users_router
from spendgate.storage import StorageError

if TYPE_CHECKING:
    from spendgate.app import Gateway


def create_management_app(gateway: Gateway) -> FastAPI:
    """The FastAPI app for everything that is not ``/v1/*`` proxy traffic."""
    app = FastAPI(
        title="spendgate",
        version=__version__,
        description=(
            "Management and analytics API of spendgate, a gateway that records, prices and "
            "budgets every Anthropic API call. The dashboard reads exactly this API."
        ),
        # The docs are routes of api/auth.py so that the access policy covers them too.
        docs_url=None,
        openapi_url=None,
        redoc_url=None,
        dependencies=[Depends(authorize)],  # every route: api/access.py POLICY
    )
    app.state.gateway = gateway

    @app.exception_handler(ApiError)
    async def _api_error(_request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = [
            f"{'.'.join(str(p) for p in err['loc'][1:]) or 'body'}: {err['msg']}"
            for err in exc.errors()
        ]
        error = ApiError(422, "invalid_request", "; ".join(problems))
        return JSONResponse(error.body(), status_code=422)

    @app.exception_handler(StorageError)
    async def _storage(_request: Request, exc: StorageError) -> JSONResponse:
        error = ApiError(503, "database_unavailable", str(exc))
        return JSONResponse(error.body(), status_code=503)

    @app.get("/health", tags=["operations"])
    def health() -> dict[str, Any]:
        """Liveness and recording health: queue depth, spooled and lost records, database status."""
        return health_report(gateway)

    app.include_router(operations_router)
    app.include_router(requests_router)
    for router in reporting_routers:  # analytics, exports, Anthropic Admin API
        app.include_router(router)
    app.include_router(keys_router)
    app.include_router(budgets_router)
    app.include_router(imports_router)
    app.include_router(auth_router)
    app.include_router(users_router)
    app.include_router(docs_router)
    app.include_router(limits_router)
    app.include_router(alerts_router)
    app.add_middleware(DashboardFiles)  # the web dashboard at / (never under /api)
    return app


def health_report(gateway: Gateway) -> dict[str, Any]:
    """What ``GET /health`` answers (never a secret)."""
    settings = gateway.settings
    database = {"ok": False, "error": "not started"}
    if gateway.store is not None:
        try:
            gateway.store.ping()
            database = {"ok": True, "error": None}
        except Exception as exc:  # health reports the failure, it does not raise it
            database = {"ok": False, "error": f"{type(exc).__name__}"}
    recorder: dict[str, Any] = {}
    if gateway.recorder is not None:
        stats = gateway.recorder.stats()
        recorder = {
            "queue_depth": stats.queue_depth,
            "written": stats.written,
            "spooled": stats.spooled_pending,
            "lost": stats.lost,
            "writer_database_ok": stats.database_ok,
            "last_error": stats.last_error,
        }
    ok = gateway.started and database["ok"]
    return {
        "status": "ok" if ok else "degraded",
        "version": __version__,
        "upstream_url": settings.upstream_url,
        "server_key_loaded": settings.anthropic_api_key is not None,
        "database": {**database, "url": settings.public_summary()["database"]},
        "recording": recorder,
        "price_book_version": gateway.book.version,
    }
