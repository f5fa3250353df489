"""The Postgres connection pool, the one way requests take a connection from it, and the errors that mean
"the database is unreachable"."""

import asyncio
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg

from .config import Settings
from .metrics import POOL_ACQUIRE_WAIT

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


class Database:
    """The asyncpg pool behind one `acquire`, which every query goes through.

    It times the wait for a connection (`api_db_pool_acquire_wait_seconds`), and with
    API_DB_QUERY_DELAY_MS it runs `pg_sleep` on the connection before handing it over: a slow query that
    keeps the pooled connection and its Postgres backend busy (active in pg_stat_activity), as a real one
    would. An asyncio.sleep would hold the pooled connection too, but Postgres would see it idle.
    """

    def __init__(self, pool: asyncpg.Pool, query_delay_ms: int) -> None:
        self.pool = pool
        self._query_delay_seconds = query_delay_ms / 1000

    @asynccontextmanager
    async def acquire(self) -> AsyncIterator[asyncpg.Connection]:
        start = time.perf_counter()
        async with self.pool.acquire() as conn:
            POOL_ACQUIRE_WAIT.observe(time.perf_counter() - start)
            if self._query_delay_seconds:
                await conn.execute("SELECT pg_sleep($1)", self._query_delay_seconds)
            yield conn

    async def fetch(self, query: str, *args: object) -> list[asyncpg.Record]:
        async with self.acquire() as conn:
            return await conn.fetch(query, *args)

    async def fetchrow(self, query: str, *args: object) -> asyncpg.Record | None:
        async with self.acquire() as conn:
            return await conn.fetchrow(query, *args)

    async def fetchval(self, query: str, *args: object) -> object:
        async with self.acquire() as conn:
            return await conn.fetchval(query, *args)

    async def close(self) -> None:
        await self.pool.close()


async def open_database(settings: Settings) -> Database:
    """Open the pool, waiting up to STARTUP_WAIT_SECONDS for Postgres to accept connections."""
    deadline = time.monotonic() + STARTUP_WAIT_SECONDS
    delay = 0.2
    while True:
        try:
            pool = await asyncpg.create_pool(
                settings.database_url,
                min_size=settings.db_pool_min_size,
                max_size=settings.db_pool_max_size,
                timeout=CONNECT_TIMEOUT_SECONDS,
                command_timeout=COMMAND_TIMEOUT_SECONDS,
            )
            return Database(pool, settings.db_query_delay_ms)
        except DB_UNAVAILABLE_ERRORS as exc:
            if time.monotonic() + delay > deadline:
                raise
            log.warning("database not ready, retrying", extra={"error": repr(exc), "retry_in_s": delay})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)
