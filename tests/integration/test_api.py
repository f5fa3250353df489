"""The demo API run for real (uvicorn subprocess) on real Postgres and Redis: endpoints, errors, cache."""

import json
import re
import uuid

import jwt
import pytest
import requests

from tests.support.db import fetch, fetchval
from tests.support.demo_api import ApiClient, DemoApi
from tests.support.local_services import wait_until

SEED_PASSWORD = "seed-password-123"
SEED_ITEMS = 60
SECRET = "test-secret-for-test-api-0123456789abcdef"


@pytest.fixture(scope="module")
def database(postgres_server):
    return postgres_server.create_database(f"api_{uuid.uuid4().hex[:10]}")


@pytest.fixture(scope="module")
def api(database, redis_server):
    redis_server.flushall()
    env = {
        "DATABASE_URL": database,
        "REDIS_URL": redis_server.url,
        "API_SECRET_KEY": SECRET,
        "CACHE_TTL_SECONDS": "300",
        "SEED_ON_START": "true",
        "SEED_ITEMS": str(SEED_ITEMS),
        "SEED_USERS": "3",
        "SEED_USER_PASSWORD": SEED_PASSWORD,
    }
    with DemoApi(env) as running:
        yield running


@pytest.fixture
def client(api):
    with api.client() as client:
        yield client


def login(client: ApiClient, email: str, password: str = SEED_PASSWORD) -> dict[str, str]:
    response = client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert response.status_code == 200, response.text
    return {"Authorization": f"Bearer {response.json()['access_token']}"}


def assert_error(response: requests.Response, status: int, error: str) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert body["error"] == error
    assert body["message"]
    return body


def field_names(response: requests.Response) -> set[str]:
    body = assert_error(response, 422, "validation_error")
    return {field["field"] for field in body["fields"]}


# Health


def test_healthz_and_readyz_answer_ok(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"postgres": "ok", "redis": "ok"}}


# Auth


def test_register_login_and_me(client):
    email = f"new-{uuid.uuid4().hex[:8]}@example.test"
    registered = client.post(
        "/api/v1/auth/register", json={"email": email.upper(), "password": "long-enough"}
    )
    assert registered.status_code == 201, registered.text
    assert registered.json()["email"] == email  # stored lower-cased

    headers = login(client, email, "long-enough")
    me = client.get("/api/v1/auth/me", headers=headers)
    assert me.status_code == 200
    assert me.json()["id"] == registered.json()["id"]
    assert me.json()["email"] == email


def test_token_is_a_jwt_signed_with_api_secret_key(client):
    token = login(client, "user1@loadlab.test")["Authorization"].split()[1]
    claims = jwt.decode(token, SECRET, algorithms=["HS256"])
    assert claims["email"] == "user1@loadlab.test"
    assert claims["exp"] > claims["iat"]


def test_duplicate_registration_is_409(client):
    body = {"email": "user2@loadlab.test", "password": "whatever-password"}
    assert_error(client.post("/api/v1/auth/register", json=body), 409, "email_taken")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"email": "not-an-email", "password": "long-enough"}, "email"),
        ({"email": "a@b.test", "password": "short"}, "password"),
        ({"password": "long-enough"}, "email"),
    ],
)
def test_register_rejects_bad_fields_with_422_naming_them(client, body, field):
    assert field in field_names(client.post("/api/v1/auth/register", json=body))


def test_register_rejects_a_body_that_is_not_json(client):
    response = client.post(
        "/api/v1/auth/register", data=b"{nope", headers={"content-type": "application/json"}
    )
    assert_error(response, 422, "validation_error")


@pytest.mark.parametrize(
    ("email", "password"),
    [("user1@loadlab.test", "wrong-password"), ("nobody@loadlab.test", SEED_PASSWORD)],
)
def test_bad_credentials_are_401(client, email, password):
    response = client.post("/api/v1/auth/login", json={"email": email, "password": password})
    assert_error(response, 401, "invalid_credentials")


def _forged(secret: str, **claims) -> dict[str, str]:
    return {"Authorization": "Bearer " + jwt.encode({"sub": "1", "exp": 4_000_000_000, **claims}, secret)}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "Bearer not.a.token"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        _forged("some-other-secret-0123456789abcdef0123"),
        _forged(SECRET, exp=1_000_000_000),  # expired in 2001
    ],
    ids=["missing", "garbage", "not-bearer", "wrong-signature", "expired"],
)
def test_me_needs_a_valid_token(client, headers):
    response = client.get("/api/v1/auth/me", headers=headers)
    assert_error(response, 401, "unauthorized")
    assert response.headers["www-authenticate"] == "Bearer"


# Catalog


def test_items_pages_in_id_order(client):
    response = client.get("/api/v1/items", params={"page": 2, "per_page": 5})
    assert response.status_code == 200
    body = response.json()
    assert [item["id"] for item in body["items"]] == [6, 7, 8, 9, 10]
    assert (body["page"], body["per_page"], body["total"]) == (2, 5, SEED_ITEMS)
    assert set(body["items"][0]) == {"id", "sku", "name", "category", "price_cents", "stock"}


def test_items_filter_by_category(client):
    body = client.get("/api/v1/items", params={"category": "books", "per_page": 100}).json()
    assert body["items"]
    assert {item["category"] for item in body["items"]} == {"books"}
    assert body["total"] == len(body["items"])
    assert client.get("/api/v1/items", params={"category": "no-such"}).json()["total"] == 0


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"per_page": 0}, "per_page"),
        ({"per_page": 101}, "per_page"),
        ({"page": "two"}, "page"),
        ({"category": "Bad Category!"}, "category"),
    ],
)
def test_items_reject_bad_query_with_422_naming_it(client, params, field):
    assert field_names(client.get("/api/v1/items", params=params)) == {field}


def test_item_by_id(client):
    response = client.get("/api/v1/items/7")
    assert response.status_code == 200
    assert response.json()["id"] == 7
    assert response.json()["sku"] == "SKU-000007"


def test_unknown_item_is_404_and_bad_id_is_422(client):
    assert_error(client.get("/api/v1/items/999999"), 404, "item_not_found")
    assert field_names(client.get("/api/v1/items/abc")) == {"item_id"}
    assert field_names(client.get("/api/v1/items/0")) == {"item_id"}
    assert field_names(client.get("/api/v1/items/99999999999999999999")) == {"item_id"}


def test_item_read_misses_then_hits_the_cache(api, client):
    hits, misses = (
        api.metric("api_cache_hits_total", cache="item"),
        api.metric("api_cache_misses_total", cache="item"),
    )
    first = client.get("/api/v1/items/42")
    assert api.metric("api_cache_misses_total", cache="item") == misses + 1
    assert api.metric("api_cache_hits_total", cache="item") == hits
    second = client.get("/api/v1/items/42")
    assert api.metric("api_cache_hits_total", cache="item") == hits + 1
    assert api.metric("api_cache_misses_total", cache="item") == misses + 1
    assert first.json() == second.json()


def test_items_page_is_cached_per_query(api, client):
    misses = api.metric("api_cache_misses_total", cache="items_page")
    hits = api.metric("api_cache_hits_total", cache="items_page")
    client.get("/api/v1/items", params={"page": 3, "per_page": 7})
    client.get("/api/v1/items", params={"page": 3, "per_page": 7})
    client.get("/api/v1/items", params={"page": 4, "per_page": 7})
    assert api.metric("api_cache_misses_total", cache="items_page") == misses + 2
    assert api.metric("api_cache_hits_total", cache="items_page") == hits + 1


# Orders


def stock(database: str, item_id: int) -> int:
    return fetchval(database, "SELECT stock FROM items WHERE id = $1", item_id)


def test_order_decrements_stock_and_is_readable_by_its_owner_only(client, database):
    owner = login(client, "user1@loadlab.test")
    before = {11: stock(database, 11), 12: stock(database, 12)}
    lines = [{"item_id": 12, "quantity": 2}, {"item_id": 11, "quantity": 1}, {"item_id": 12, "quantity": 1}]
    response = client.post("/api/v1/orders", json={"lines": lines}, headers=owner)
    assert response.status_code == 201, response.text
    order = response.json()
    assert [(line["item_id"], line["quantity"]) for line in order["lines"]] == [(11, 1), (12, 3)]
    assert order["total_cents"] == sum(line["quantity"] * line["price_cents"] for line in order["lines"])
    assert stock(database, 11) == before[11] - 1
    assert stock(database, 12) == before[12] - 3

    read = client.get(f"/api/v1/orders/{order['id']}", headers=owner)
    assert read.status_code == 200
    assert read.json() == order
    other = login(client, "user2@loadlab.test")
    assert_error(client.get(f"/api/v1/orders/{order['id']}", headers=other), 404, "order_not_found")
    assert_error(client.get(f"/api/v1/orders/{order['id']}"), 401, "unauthorized")


def test_short_stock_is_409_and_rolls_everything_back(client, database):
    headers = login(client, "user3@loadlab.test")
    fetch(database, "UPDATE items SET stock = 5 WHERE id = 21")
    orders_before = fetchval(database, "SELECT count(*) FROM orders")
    lines_before = fetchval(database, "SELECT count(*) FROM order_lines")
    stock_20 = stock(database, 20)

    lines = [{"item_id": 20, "quantity": 1}, {"item_id": 21, "quantity": 6}]
    body = assert_error(
        client.post("/api/v1/orders", json={"lines": lines}, headers=headers), 409, "insufficient_stock"
    )
    assert body["lines"] == [{"item_id": 21, "requested": 6, "available": 5}]
    assert stock(database, 20) == stock_20  # the line that fitted was rolled back too
    assert stock(database, 21) == 5
    assert fetchval(database, "SELECT count(*) FROM orders") == orders_before
    assert fetchval(database, "SELECT count(*) FROM order_lines") == lines_before

    exact = client.post("/api/v1/orders", json={"lines": [{"item_id": 21, "quantity": 5}]}, headers=headers)
    assert exact.status_code == 201
    assert stock(database, 21) == 0


def test_order_for_an_unknown_item_is_404(client, database):
    headers = login(client, "user3@loadlab.test")
    orders_before = fetchval(database, "SELECT count(*) FROM orders")
    lines = [{"item_id": 1, "quantity": 1}, {"item_id": 987654, "quantity": 1}]
    body = assert_error(
        client.post("/api/v1/orders", json={"lines": lines}, headers=headers), 404, "item_not_found"
    )
    assert body["item_ids"] == [987654]
    assert fetchval(database, "SELECT count(*) FROM orders") == orders_before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"lines": []}, "lines"),
        ({"lines": [{"item_id": 1, "quantity": 0}]}, "lines.0.quantity"),
        ({"lines": [{"item_id": 1, "quantity": 1}, {"item_id": -1, "quantity": 1}]}, "lines.1.item_id"),
        ({}, "lines"),
    ],
)
def test_order_rejects_bad_lines_with_422_naming_them(client, body, field):
    headers = login(client, "user1@loadlab.test")
    assert field in field_names(client.post("/api/v1/orders", json=body, headers=headers))


def test_orders_need_a_token(client):
    body = {"lines": [{"item_id": 1, "quantity": 1}]}
    assert_error(client.post("/api/v1/orders", json=body), 401, "unauthorized")


def test_unknown_order_is_404(client):
    headers = login(client, "user1@loadlab.test")
    assert_error(client.get("/api/v1/orders/424242", headers=headers), 404, "order_not_found")


def test_unknown_route_and_method_are_json_errors(client):
    assert_error(client.get("/api/v1/nothing-here"), 404, "not_found")
    assert_error(client.delete("/api/v1/items/1"), 405, "method_not_allowed")


# Metrics and logs


def test_metrics_label_routes_by_template_never_by_raw_path(api, client):
    for item_id in (3, 4, 5):
        client.get(f"/api/v1/items/{item_id}")
    client.get("/api/v1/items/999999")
    client.get("/api/v1/no-such-route/123")
    client.get("/healthz")
    client.get("/readyz")

    samples = api.metrics()
    labels = lambda name: [dict(key) for (sample, key) in samples if sample == name]  # noqa: E731
    requests = labels("http_requests_total")
    assert {"method": "GET", "handler": "/api/v1/items/{item_id}", "status": "200"} in requests
    assert {"method": "GET", "handler": "/api/v1/items/{item_id}", "status": "404"} in requests
    assert {"method": "GET", "handler": "none", "status": "404"} in requests
    values = {value for series in requests for value in series.values()}
    assert not [value for value in values if re.search(r"/\d+(/|$)", value)]  # no raw ids
    assert not {"/healthz", "/readyz", "/metrics"} & values
    for series in labels("http_request_duration_seconds_count"):
        assert set(series) == {"method", "handler", "status"}
    assert {"method": "GET", "handler": "/api/v1/items/{item_id}"} in labels("http_requests_inprogress")

    buckets = {
        float(dict(key)["le"])
        for (sample, key) in samples
        if sample == "http_request_duration_seconds_bucket"
        and dict(key)["handler"] == "/api/v1/items/{item_id}"
        and dict(key)["status"] == "200"
    }
    assert buckets == {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, float("inf")}
    assert api.metric("api_db_pool_size") >= 1
    assert api.metric("api_db_pool_connections_in_use") == 0  # nothing in flight during the scrape
    assert api.metric("process_resident_memory_bytes") > 0


def test_logs_are_json_lines_with_the_route_template(api, client):
    client.get("/api/v1/items/8")

    def logged() -> list[dict]:  # the line is written just after the response is sent
        records = [json.loads(line) for line in api.log_text().splitlines() if line.strip()]
        return [r for r in records if r["msg"] == "request" and r["path"] == "/api/v1/items/8"]

    line = wait_until(logged, 5, what="the request's log line")[-1]
    assert line["route"] == "/api/v1/items/{item_id}"
    assert line["status"] == 200
    assert line["level"] == "info"
