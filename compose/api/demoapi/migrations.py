"""Schema migrations, applied at start-up under an advisory lock so replicas can start together."""

import logging

import asyncpg

log = logging.getLogger(__name__)

# One session-level advisory lock guards schema changes and seeding ("LoadLab" in ASCII).
SCHEMA_LOCK_KEY = 0x4C6F61644C6162

# (version, SQL), applied in order, each once and in its own transaction. Append; never edit.
MIGRATIONS: tuple[tuple[int, str], ...] = (
    (
        1,
        """
        CREATE TABLE users (
            id            bigserial PRIMARY KEY,
            email         text NOT NULL UNIQUE,
            password_hash text NOT NULL,
            created_at    timestamptz NOT NULL DEFAULT now()
        );
        CREATE TABLE items (
            id          bigserial PRIMARY KEY,
            sku         text NOT NULL UNIQUE,
            name        text NOT NULL,
            category    text NOT NULL,
            price_cents integer NOT NULL CHECK (price_cents >= 0),
            stock       integer NOT NULL CHECK (stock >= 0),
            created_at  timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX items_category_id ON items (category, id);
        CREATE TABLE orders (
            id          bigserial PRIMARY KEY,
            user_id     bigint NOT NULL REFERENCES users (id),
            total_cents bigint NOT NULL,
            created_at  timestamptz NOT NULL DEFAULT now()
        );
        CREATE INDEX orders_user_id ON orders (user_id);
        CREATE TABLE order_lines (
            order_id    bigint NOT NULL REFERENCES orders (id) ON DELETE CASCADE,
            item_id     bigint NOT NULL REFERENCES items (id),
            quantity    integer NOT NULL CHECK (quantity > 0),
            price_cents integer NOT NULL,
            PRIMARY KEY (order_id, item_id)
        );
        """,
    ),
)


async def migrate(conn: asyncpg.Connection) -> list[int]:
    """Apply the missing migrations; return the versions applied by this call."""
    await conn.execute("SELECT pg_advisory_lock($1)", SCHEMA_LOCK_KEY)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {row["version"] for row in await conn.fetch("SELECT version FROM schema_migrations")}
        applied = []
        for version, sql in MIGRATIONS:
            if version in done:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute("INSERT INTO schema_migrations (version) VALUES ($1)", version)
            log.info("migration applied", extra={"version": version})
            applied.append(version)
        return applied
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", SCHEMA_LOCK_KEY)
