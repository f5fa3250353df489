"""Seed the catalog and the load-test users: `python -m demoapi.seed [--items N] [--users N]`.

Idempotent (ON CONFLICT DO NOTHING) and fast: each table is filled by one INSERT ... SELECT over
generate_series, and the shared password is hashed once. Item i has id i, so load tests can pick ids
from 1..N; user i is user{i}@loadlab.test with the password in SEED_USER_PASSWORD.
Reads DATABASE_URL, SEED_ITEMS, SEED_USERS and SEED_USER_PASSWORD from the environment.
"""

import argparse
import asyncio
import json
import os
import sys

import asyncpg

from .auth import hash_password
from .config import DEFAULT_DATABASE_URL, ConfigError, env_int
from .migrations import SCHEMA_LOCK_KEY, migrate

CATEGORIES = (
    "books", "music", "movies", "games", "electronics", "computers", "phones", "cameras", "audio", "home",
    "kitchen", "garden", "tools", "toys", "sports", "outdoors", "fashion", "shoes", "beauty", "grocery",
)  # fmt: skip
ADJECTIVES = (
    "Classic",
    "Compact",
    "Deluxe",
    "Eco",
    "Essential",
    "Modern",
    "Portable",
    "Pro",
    "Smart",
    "Vintage",
)
NOUNS = ("Bundle", "Edition", "Kit", "Model", "Pack", "Set", "Series", "Unit")
INITIAL_STOCK = 1_000_000  # large enough that long load runs never sell out


async def seed(conn: asyncpg.Connection, items: int, users: int, password: str | None) -> dict[str, int]:
    """Insert items 1..items and users 1..users that are missing; return how many rows were new."""
    if users and not password:
        raise ConfigError(
            "SEED_USER_PASSWORD is not set: set it to the load-test users' password, or seed 0 users"
        )
    password_hash = hash_password(password) if users else ""
    await conn.execute("SELECT pg_advisory_lock($1)", SCHEMA_LOCK_KEY)
    try:
        async with conn.transaction():
            items_status = await conn.execute(
                "INSERT INTO items (id, sku, name, category, price_cents, stock)"
                " SELECT i, 'SKU-' || lpad(i::text, 6, '0'),"
                "  ($2::text[])[1 + i % cardinality($2::text[])] || ' '"
                "   || ($3::text[])[1 + (i / 7) % cardinality($3::text[])] || ' ' || i,"
                "  ($4::text[])[1 + i % cardinality($4::text[])],"
                "  199 + (i * 7919) % 20000, $5"
                " FROM generate_series(1, $1::int) AS i ON CONFLICT DO NOTHING",
                items,
                list(ADJECTIVES),
                list(NOUNS),
                list(CATEGORIES),
                INITIAL_STOCK,
            )
            # Explicit ids leave the sequence behind; move it past them.
            await conn.execute(
                "SELECT setval(pg_get_serial_sequence('items', 'id'), greatest((SELECT max(id) FROM items), 1))"
            )
            users_status = await conn.execute(
                "INSERT INTO users (email, password_hash)"
                " SELECT 'user' || i || '@loadlab.test', $2 FROM generate_series(1, $1::int) AS i"
                " ON CONFLICT (email) DO NOTHING",
                users,
                password_hash,
            )
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", SCHEMA_LOCK_KEY)
    # asyncpg returns the command tag, "INSERT 0 <rows>".
    return {"items_inserted": int(items_status.split()[-1]), "users_inserted": int(users_status.split()[-1])}


async def _run(database_url: str, items: int, users: int, password: str | None) -> dict[str, int]:
    conn = await asyncpg.connect(database_url)
    try:
        await migrate(conn)
        return await seed(conn, items, users, password)
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> int:
    try:
        parser = argparse.ArgumentParser(prog="python -m demoapi.seed", description=__doc__.splitlines()[0])
        parser.add_argument("--items", type=int, default=env_int(os.environ, "SEED_ITEMS", 10_000))
        parser.add_argument("--users", type=int, default=env_int(os.environ, "SEED_USERS", 1_000))
        args = parser.parse_args(argv)
        if args.items < 0 or args.users < 0:
            raise ConfigError("--items and --users must be >= 0")
        database_url = os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL
        result = asyncio.run(_run(database_url, args.items, args.users, os.environ.get("SEED_USER_PASSWORD")))
    except ConfigError as exc:
        print(f"demoapi.seed: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
