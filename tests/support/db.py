"""Synchronous one-shot queries for tests: `fetch(dsn, sql, *args)` on a fresh asyncpg connection."""

import asyncio

import asyncpg


def fetch(dsn: str, sql: str, *args) -> list[asyncpg.Record]:
    async def run() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(dsn)
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()

    return asyncio.run(run())


def fetchval(dsn: str, sql: str, *args):
    rows = fetch(dsn, sql, *args)
    return rows[0][0] if rows else None
