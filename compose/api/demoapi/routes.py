"""The versioned JSON API under /api/v1: auth, catalog (cache-aside) and orders."""

import asyncio
import hashlib
import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated

import asyncpg
from fastapi import APIRouter, Depends, Path, Query, Request, Response

from .auth import TOKEN_TTL_SECONDS, CurrentUserId, hash_password, issue_token, verify_password
from .db import Database
from .errors import ApiError
from .models import Credentials, OrderRequest

MAX_ID = 2**63 - 1  # bigint: larger ids are a 422, not a database overflow
ITEM_COLUMNS = "id, sku, name, category, price_cents, stock"


async def extra_latency(request: Request) -> None:
    """API_EXTRA_LATENCY_MS: a deliberate delay, to produce a slowed run for `lab compare`."""
    delay_ms = request.app.state.settings.extra_latency_ms
    if delay_ms:
        await asyncio.sleep(delay_ms / 1000)


def burn_cpu(seconds: float) -> None:
    """Spend `seconds` of this thread's CPU time hashing. CPU time, not wall time: a request costs the
    same CPU whether or not other processes share the core meanwhile."""
    deadline = time.thread_time() + seconds
    digest = b"loadlab"
    while time.thread_time() < deadline:
        for _ in range(100):  # ~0.1 ms between clock reads
            digest = hashlib.sha256(digest).digest()


# One thread does every request's CPU work, in the order requests asked for it. The GIL keeps the process
# to one core either way (hashing small inputs holds it), but off the event loop the loop goes on reading
# and answering while the work runs. On the loop, a request that had done its work waited for the next
# round of everyone's work at each of its awaits, so answers came out in waves, users came back in waves,
# and the loop idled 16% of the time at the knee (measured on the stack): the process never reached its core.
_CPU_WORKER = ThreadPoolExecutor(max_workers=1, thread_name_prefix="cpu-work")


async def cpu_work(request: Request) -> None:
    """API_CPU_WORK_MS: CPU-bound work in the API process, on purpose, so that load saturates the one core
    of the single uvicorn process (the knob that makes the API's CPU the bottleneck)."""
    work_ms = request.app.state.settings.cpu_work_ms
    if work_ms:
        await asyncio.get_running_loop().run_in_executor(_CPU_WORKER, burn_cpu, work_ms / 1000)


router = APIRouter(prefix="/api/v1", dependencies=[Depends(extra_latency), Depends(cpu_work)])


def _db(request: Request) -> Database:
    return request.app.state.db


def _json_body(payload: object) -> bytes:
    return json.dumps(payload, separators=(",", ":"), default=str).encode()


def _user(row: asyncpg.Record) -> dict:
    return {"id": row["id"], "email": row["email"], "created_at": row["created_at"].isoformat()}


@router.post("/auth/register", status_code=201)
async def register(body: Credentials, request: Request) -> dict:
    password_hash = await asyncio.to_thread(hash_password, body.password)
    row = await _db(request).fetchrow(
        "INSERT INTO users (email, password_hash) VALUES ($1, $2)"
        " ON CONFLICT (email) DO NOTHING RETURNING id, email, created_at",
        body.email,
        password_hash,
    )
    if row is None:
        raise ApiError(409, "email_taken", f"{body.email} is already registered: log in instead")
    return _user(row)


@router.post("/auth/login")
async def login(body: Credentials, request: Request) -> dict:
    row = await _db(request).fetchrow("SELECT id, password_hash FROM users WHERE email = $1", body.email)
    if not await verify_password(row["password_hash"] if row else None, body.password):
        raise ApiError(401, "invalid_credentials", "wrong email or password")
    token = issue_token(request.app.state.settings.secret_key, row["id"], body.email)
    return {"access_token": token, "token_type": "bearer", "expires_in": TOKEN_TTL_SECONDS}


@router.get("/auth/me")
async def me(user_id: CurrentUserId, request: Request) -> dict:
    row = await _db(request).fetchrow("SELECT id, email, created_at FROM users WHERE id = $1", user_id)
    if row is None:
        raise ApiError(401, "unauthorized", "the token's user no longer exists: register or log in again")
    return _user(row)


@router.get("/items")
async def list_items(
    request: Request,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    per_page: Annotated[int, Query(ge=1, le=100)] = 20,
    category: Annotated[str | None, Query(min_length=1, max_length=64, pattern=r"^[a-z0-9_-]+$")] = None,
) -> Response:
    db = _db(request)

    async def load() -> bytes:
        offset = (page - 1) * per_page
        if category is None:
            rows = await db.fetch(
                f"SELECT {ITEM_COLUMNS} FROM items ORDER BY id LIMIT $1 OFFSET $2", per_page, offset
            )
            total = await db.fetchval("SELECT count(*) FROM items")
        else:
            rows = await db.fetch(
                f"SELECT {ITEM_COLUMNS} FROM items WHERE category = $1 ORDER BY id LIMIT $2 OFFSET $3",
                category,
                per_page,
                offset,
            )
            total = await db.fetchval("SELECT count(*) FROM items WHERE category = $1", category)
        payload = {"items": [dict(r) for r in rows], "page": page, "per_page": per_page, "total": total}
        return _json_body(payload)

    key = f"items:{category or '*'}:{page}:{per_page}"
    body = await request.app.state.cache.get_or_load("items_page", key, load)
    return Response(body, media_type="application/json")


@router.get("/items/{item_id}")
async def get_item(item_id: Annotated[int, Path(gt=0, le=MAX_ID)], request: Request) -> Response:
    async def load() -> bytes:
        row = await _db(request).fetchrow(f"SELECT {ITEM_COLUMNS} FROM items WHERE id = $1", item_id)
        if row is None:
            raise ApiError(404, "item_not_found", f"no item with id {item_id}")
        return _json_body(dict(row))

    body = await request.app.state.cache.get_or_load("item", f"item:{item_id}", load)
    return Response(body, media_type="application/json")


@router.post("/orders", status_code=201)
async def create_order(body: OrderRequest, user_id: CurrentUserId, request: Request) -> dict:
    quantities: dict[int, int] = {}
    for line in body.lines:
        quantities[line.item_id] = quantities.get(line.item_id, 0) + line.quantity
    ids = sorted(quantities)  # one lock order for every transaction: no deadlocks between orders
    async with _db(request).acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            "SELECT id, price_cents, stock FROM items WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE",
            ids,
        )
        found = {row["id"]: row for row in rows}
        missing = [item_id for item_id in ids if item_id not in found]
        if missing:
            raise ApiError(404, "item_not_found", f"no item with id {missing[0]}", item_ids=missing)
        short = [
            {"item_id": i, "requested": quantities[i], "available": found[i]["stock"]}
            for i in ids
            if found[i]["stock"] < quantities[i]
        ]
        if short:
            raise ApiError(
                409, "insufficient_stock", f"not enough stock for item {short[0]['item_id']}", lines=short
            )
        qtys = [quantities[i] for i in ids]
        prices = [found[i]["price_cents"] for i in ids]
        await conn.execute(
            "UPDATE items SET stock = stock - l.qty FROM unnest($1::bigint[], $2::int[]) AS l(id, qty)"
            " WHERE items.id = l.id",
            ids,
            qtys,
        )
        try:
            order = await conn.fetchrow(
                "INSERT INTO orders (user_id, total_cents) VALUES ($1, $2) RETURNING id, created_at",
                user_id,
                sum(q * p for q, p in zip(qtys, prices, strict=True)),
            )
        except asyncpg.ForeignKeyViolationError:
            raise ApiError(401, "unauthorized", "the token's user no longer exists: log in again") from None
        await conn.execute(
            "INSERT INTO order_lines (order_id, item_id, quantity, price_cents)"
            " SELECT $1, * FROM unnest($2::bigint[], $3::int[], $4::int[])",
            order["id"],
            ids,
            qtys,
            prices,
        )
    lines = [
        {"item_id": i, "quantity": q, "price_cents": p} for i, q, p in zip(ids, qtys, prices, strict=True)
    ]
    return _order(order, user_id, lines)


@router.get("/orders/{order_id}")
async def get_order(
    order_id: Annotated[int, Path(gt=0, le=MAX_ID)], user_id: CurrentUserId, request: Request
) -> dict:
    async with _db(request).acquire() as conn:
        # Someone else's order is "not found" too: ids must not reveal other users' orders.
        order = await conn.fetchrow(
            "SELECT id, created_at FROM orders WHERE id = $1 AND user_id = $2", order_id, user_id
        )
        if order is None:
            raise ApiError(404, "order_not_found", f"no order with id {order_id}")
        lines = await conn.fetch(
            "SELECT item_id, quantity, price_cents FROM order_lines WHERE order_id = $1 ORDER BY item_id",
            order_id,
        )
    return _order(order, user_id, [dict(line) for line in lines])


def _order(order: asyncpg.Record, user_id: int, lines: list[dict]) -> dict:
    return {
        "id": order["id"],
        "user_id": user_id,
        "created_at": order["created_at"].isoformat(),
        "total_cents": sum(line["quantity"] * line["price_cents"] for line in lines),
        "lines": lines,
    }
