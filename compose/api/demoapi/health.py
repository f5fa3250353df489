"""Liveness and readiness probes (not counted in the request metrics)."""

import asyncio

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from redis.exceptions import RedisError

from .db import DB_UNAVAILABLE_ERRORS

PROBE_TIMEOUT_SECONDS = 2.0

router = APIRouter(include_in_schema=False)


@router.get("/healthz")
async def healthz() -> dict:
    """The process serves requests; says nothing of its dependencies."""
    return {"status": "ok"}


@router.get("/readyz")
async def readyz(request: Request) -> JSONResponse:
    """Ready when Postgres and Redis both answer; 503 naming the one that does not."""
    checks = {}
    try:
        async with asyncio.timeout(PROBE_TIMEOUT_SECONDS):
            await request.app.state.db.fetchval("SELECT 1")
        checks["postgres"] = "ok"
    except DB_UNAVAILABLE_ERRORS as exc:
        checks["postgres"] = f"unavailable: {type(exc).__name__}: {exc}"
    try:
        await request.app.state.redis.ping()
        checks["redis"] = "ok"
    except RedisError as exc:
        checks["redis"] = f"unavailable: {type(exc).__name__}: {exc}"
    ready = all(state == "ok" for state in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "unavailable", "checks": checks}, 200 if ready else 503
    )
