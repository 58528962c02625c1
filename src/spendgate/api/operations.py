"""``/livez``, ``/readyz`` and ``/metrics``: for orchestrators, load balancers and Prometheus."""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from spendgate.api.errors import ApiError
from spendgate.observability.metrics import CONTENT_TYPE
from spendgate.observability.probes import check_readiness

if TYPE_CHECKING:
    from spendgate.app import Gateway

router = APIRouter(tags=["operations"])


def _gateway(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.gateway
    return gateway


@router.get("/livez")
async def livez() -> dict[str, str]:
    """Liveness: the process answers. Restart it only when this fails."""
    return {"status": "alive"}


@router.get("/readyz", responses={503: {"description": "not ready; the body says why"}})
def readyz(request: Request) -> JSONResponse:
    """Readiness: started and not shutting down, database reachable and migrated, writer up.

    Answers 503 with the failing checks otherwise, so a load balancer sends no
    calls here until it is ready again.
    """
    gateway = _gateway(request)
    ops = gateway.operations
    readiness = check_readiness(
        started=gateway.started,
        draining=gateway.draining,
        store=gateway.store,
        recorder=gateway.recorder,
        heads=ops.heads if ops is not None else (),
    )
    body = {"status": "ready" if readiness.ready else "not_ready", "checks": readiness.checks}
    return JSONResponse(body, status_code=200 if readiness.ready else 503)


@router.get("/metrics", response_class=Response)
def metrics(request: Request) -> Response:
    """Prometheus metrics (text exposition format) of this process or of all its workers."""
    gateway = _gateway(request)
    ops = gateway.operations
    if ops is None or ops.telemetry.metrics is None:
        raise ApiError(404, "metrics_disabled", "metrics are off; set SPENDGATE_METRICS=true")
    ops.sample(gateway)
    return Response(ops.telemetry.metrics.render(), media_type=CONTENT_TYPE)
