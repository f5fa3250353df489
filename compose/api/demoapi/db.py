"""The asyncpg connection pool and the errors that mean "the database is unreachable"."""

import asyncio
import logging
import time

import asyncpg

from .config import Settings

log = logging.getLogger(__name__)

# Raised while Postgres is down, restarting or unreachable; the API answers 503 for them, and the pool
# replaces the broken connections on its next acquire, so service resumes by itself.
# OSError covers refused connections and timeouts; InterfaceError covers "connection is closed".
DB_UNAVAILABLE_ERRORS: tuple[type[Exception], ...] = (
    OSError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.exceptions.InterfaceError,
)

STARTUP_WAIT_SECONDS = 60.0
CONNECT_TIMEOUT_SECONDS = 5.0
COMMAND_TIMEOUT_SECONDS = 30.0


async def create_pool(settings: Settings) -> asyncpg.Pool:
    """Open the pool, waiting up to STARTUP_WAIT_SECONDS for Postgres to accept connections."""
    deadline = time.monotonic() + STARTUP_WAIT_SECONDS
    delay = 0.2
    while True:
        try:
            return await asyncpg.create_pool(
                settings.database_url,
                min_size=settings.db_pool_min_size,
                max_size=settings.db_pool_max_size,
                timeout=CONNECT_TIMEOUT_SECONDS,
                command_timeout=COMMAND_TIMEOUT_SECONDS,
            )
        except DB_UNAVAILABLE_ERRORS as exc:
            if time.monotonic() + delay > deadline:
                raise
            log.warning("database not ready, retrying", extra={"error": repr(exc), "retry_in_s": delay})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
