"""The ASGI application: `uvicorn demoapi.main:app`.

Start-up opens the Postgres pool, applies migrations (and seeds when SEED_ON_START=true), and opens
the Redis client. Without a valid configuration the process exits at once with a one-line error.
"""

import logging
import sys
from contextlib import asynccontextmanager
from http import HTTPStatus

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from . import health, routes
from .cache import Cache, create_redis
from .config import ConfigError, Settings, load_settings
from .db import DB_UNAVAILABLE_ERRORS, open_database
from .errors import ApiError, error_response
from .logs import RequestLogMiddleware, configure_logging
from .metrics import instrument, register_collectors
from .migrations import migrate
from .seed import seed

log = logging.getLogger("demoapi")


@asynccontextmanager
async def lifespan(app: FastAPI):
    settings: Settings = app.state.settings
    app.state.db = await open_database(settings)
    async with app.state.db.acquire() as conn:
        applied = await migrate(conn)
        if settings.seed_on_start:
            seeded = await seed(conn, settings.seed_items, settings.seed_users, settings.seed_user_password)
            log.info("seeded", extra=seeded)
    app.state.redis = create_redis(settings.redis_url)
    app.state.cache = Cache(app.state.redis, settings.cache_ttl_seconds)
    log.info(
        "started",
        extra={
            "migrations_applied": applied,
            "cache_ttl_seconds": settings.cache_ttl_seconds,
            "db_pool_max_size": settings.db_pool_max_size,
            "cpu_work_ms": settings.cpu_work_ms,
            "db_query_delay_ms": settings.db_query_delay_ms,
        },
    )
    try:
        yield
    finally:
        await app.state.redis.aclose()
        await app.state.db.close()


async def _api_error(request: Request, exc: ApiError):
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    return error_response(exc.status, exc.code, exc.message, headers=headers, **exc.details)


async def _validation_error(request: Request, exc: RequestValidationError):
    fields = [
        {
            "field": ".".join(str(part) for part in err["loc"][1:]) or err["loc"][0],
            "in": err["loc"][0],
            "message": err["msg"],
        }
        for err in exc.errors()
    ]
    message = "; ".join(f"{f['field']}: {f['message']}" for f in fields)
    return error_response(422, "validation_error", message, fields=fields)


async def _http_error(request: Request, exc: HTTPException):
    code = HTTPStatus(exc.status_code).phrase.lower().replace(" ", "_")
    return error_response(exc.status_code, code, str(exc.detail), headers=exc.headers)


async def _database_unavailable(request: Request, exc: Exception):
    log.warning("database unavailable", extra={"path": request.url.path, "error": repr(exc)})
    return error_response(
        503,
        "database_unavailable",
        "the database is unreachable: retry shortly",
        headers={"Retry-After": "1"},
    )


async def _internal_error(request: Request, exc: Exception):
    # Starlette logs the traceback after this answer; the client never sees it.
    return error_response(500, "internal_error", "unexpected server error")


def create_app(settings: Settings) -> FastAPI:
    configure_logging(settings.log_level)
    app = FastAPI(title="Load Lab demo API", version="1.0.0", lifespan=lifespan)
    app.state.settings = settings
    app.state.db = None
    app.include_router(health.router)
    app.include_router(routes.router)
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    for error in DB_UNAVAILABLE_ERRORS:
        app.add_exception_handler(error, _database_unavailable)
    app.add_exception_handler(Exception, _internal_error)
    app.add_middleware(RequestLogMiddleware)
    instrument(app)
    register_collectors(lambda: app.state.db and app.state.db.pool)
    return app


def _settings_or_exit() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        print(f"demoapi: {exc}", file=sys.stderr)
        raise SystemExit(2) from None


app = create_app(_settings_or_exit())
