"""User classes for the demo API (the lab's plugin adds the scenarios' load shapes for the class picker and `lab run`).

The mix by users is 6:3:1: catalog readers, account users who log in, shoppers who place orders,
which gives roughly 60% reads, 30% auth and 10% writes. ArrivalMix is the same mix under the open model:
the pool of the `rate` scenarios (rate, rate-stress, rate-spike, rate-soak, rate-capacity); the closed
scenarios leave it out, and the rate scenarios run only it. Requests to URLs with ids are grouped under
one name (/api/v1/items/[id]) so stats, exporter series and SLOs are per endpoint, not per id.
Tags select parts of the workload: `--tags read`, `--tags auth`, `--tags write`.

Test data comes from the seeder: items 1..SEED_ITEMS, users user{i}@loadlab.test for i in
1..SEED_USERS with the password SEED_USER_PASSWORD (the lab passes them to the Locust containers).

`--request-cpu-ms` (LOCUST_REQUEST_CPU_MS, default 0) makes every request cost its worker that much CPU
time, to make the load generators the bottleneck on purpose in a demo.
"""

import argparse
import hashlib
import logging
import os
import random
import time

from locust import FastHttpUser, between, events, tag, task

from lab.shapes import ArrivalUser

SEED_ITEMS = int(os.environ.get("SEED_ITEMS", "10000"))
SEED_USERS = int(os.environ.get("SEED_USERS", "200"))
SEED_USER_PASSWORD = os.environ.get("SEED_USER_PASSWORD", "")
PER_PAGE = 20
if not SEED_USER_PASSWORD:
    logging.getLogger(__name__).warning(
        "SEED_USER_PASSWORD is not set: logins will fail (the lab passes the seeded users' password from .env)"
    )

# Categories learnt from catalog pages, shared by the users of this process.
categories: set[str] = set()


def random_item_id() -> int:
    return random.randint(1, SEED_ITEMS)


def seeded_credentials() -> dict:
    return {"email": f"user{random.randint(1, SEED_USERS)}@loadlab.test", "password": SEED_USER_PASSWORD}


class ApiUser(FastHttpUser):
    abstract = True
    token = ""

    def login(self) -> bool:
        self.token = ""
        with self.client.post(
            "/api/v1/auth/login", json=seeded_credentials(), name="/api/v1/auth/login", catch_response=True
        ) as response:
            if response.status_code != 200:
                response.failure(f"login: HTTP {response.status_code}")
                return False
            try:
                self.token = response.json()["access_token"]
            except (ValueError, KeyError, TypeError):
                response.failure("login: no access_token in the response")
                return False
            return True

    @property
    def auth(self) -> dict:
        return {"Authorization": f"Bearer {self.token}"}

    def view_page(self, category: str | None = None) -> None:
        # Browsing stays near the front of the catalog (its first tenth, the first pages of a
        # category), as real traffic does: a hot set the API's cache can serve.
        if category:
            params = f"?page={random.randint(1, 5)}&per_page={PER_PAGE}&category={category}"
            name = "/api/v1/items?category"
        else:
            params = f"?page={random.randint(1, max(1, SEED_ITEMS // PER_PAGE // 10))}&per_page={PER_PAGE}"
            name = "/api/v1/items?page"
        with self.client.get(f"/api/v1/items{params}", name=name, catch_response=True) as response:
            if response.status_code != 200:
                response.failure(f"items: HTTP {response.status_code}")
                return
            try:
                categories.update(item["category"] for item in response.json()["items"])
            except (ValueError, KeyError, TypeError):
                response.failure("items: not a page of items")

    def view_item(self) -> None:
        self.client.get(f"/api/v1/items/{random_item_id()}", name="/api/v1/items/[id]")


class CatalogBrowser(ApiUser):
    """Reads: pages of the catalog, a category, single items. Most of the traffic."""

    weight = 6
    wait_time = between(1, 3)

    @tag("read", "catalog")
    @task(3)
    def browse(self) -> None:
        self.view_page()

    @tag("read", "catalog")
    @task(2)
    def browse_category(self) -> None:
        if categories:
            self.view_page(random.choice(sorted(categories)))
        else:
            self.view_page()

    @tag("read", "catalog")
    @task(5)
    def item(self) -> None:
        self.view_item()


class AccountUser(ApiUser):
    """Auth: logs in (password hashing is the API's most CPU-hungry path) and checks its account."""

    weight = 3
    wait_time = between(2, 5)

    @tag("auth")
    @task(2)
    def log_in(self) -> None:
        self.login()

    @tag("auth")
    @task(3)
    def me(self) -> None:
        if not self.token and not self.login():
            return
        self.client.get("/api/v1/auth/me", headers=self.auth, name="/api/v1/auth/me")


class Shopper(ApiUser):
    """Writes: logs in once, looks at items, places orders and reads them back."""

    weight = 1
    wait_time = between(2, 5)

    def on_start(self) -> None:
        self.orders: list[int] = []
        self.login()

    @tag("read", "catalog")
    @task(2)
    def item(self) -> None:
        self.view_item()

    @tag("write", "orders")
    @task(2)
    def order(self) -> None:
        if not self.token and not self.login():
            return
        lines = [
            {"item_id": random_item_id(), "quantity": random.randint(1, 3)}
            for _ in range(random.randint(1, 3))
        ]
        with self.client.post(
            "/api/v1/orders",
            json={"lines": lines},
            headers=self.auth,
            name="/api/v1/orders",
            catch_response=True,
        ) as response:
            if response.status_code == 201:
                try:
                    self.orders.append(int(response.json()["id"]))
                except (ValueError, KeyError, TypeError):
                    response.failure("order: no id in the response")
                del self.orders[:-20]
            elif response.status_code == 409:
                response.success()  # out of stock: a correct answer of the API, not an error
            else:
                response.failure(f"order: HTTP {response.status_code}")

    @tag("read", "orders")
    @task(1)
    def view_order(self) -> None:
        if self.orders:
            order_id = random.choice(self.orders)
            self.client.get(f"/api/v1/orders/{order_id}", headers=self.auth, name="/api/v1/orders/[id]")


class ArrivalMix(ArrivalUser, ApiUser):
    """The demo mix under the open model: each arrival runs one task of the classes above, weighted by the
    class's share of the mix (6:3:1) times the task's own weight, so that arrivals split as users' tasks do."""

    tasks = {
        CatalogBrowser.browse: 18,
        CatalogBrowser.browse_category: 12,
        CatalogBrowser.item: 30,
        AccountUser.log_in: 12,
        AccountUser.me: 18,
        Shopper.item: 4,
        Shopper.order: 4,
        Shopper.view_order: 2,
    }

    def on_start(self) -> None:
        self.orders: list[int] = []  # Shopper's tasks keep the orders placed; it logs in when it orders

    def login(self) -> bool:
        # AccountUser's log_in may log in as another user: the orders kept are only the current user's.
        self.orders = []
        return super().login()


# The generators as the bottleneck, on purpose: --request-cpu-ms / LOCUST_REQUEST_CPU_MS.

MAX_REQUEST_CPU_MS = 1000


def request_cpu_ms(raw: str) -> int:
    try:
        value = int(raw)
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_REQUEST_CPU_MS:
        raise argparse.ArgumentTypeError(
            f"{raw!r} is not a whole number of ms from 0 to {MAX_REQUEST_CPU_MS} (LOCUST_REQUEST_CPU_MS)"
        )
    return value


@events.init_command_line_parser.add_listener
def add_arguments(parser) -> None:
    parser.add_argument(
        "--request-cpu-ms",
        type=request_cpu_ms,
        default=0,
        env_var="LOCUST_REQUEST_CPU_MS",
        include_in_web_ui=False,
        help="CPU time (ms) every request costs the worker that makes it: a demo knob that makes the load "
        "generators the bottleneck (default 0; the master sends its value to the workers)",
    )


def burn_cpu(seconds: float) -> None:
    """Spend `seconds` of this thread's CPU time hashing, blocking the worker's event loop meanwhile, as
    heavy client-side work (parsing, signing) would. CPU time, so other processes on the core don't count."""
    deadline = time.thread_time() + seconds
    digest = b"loadlab"
    while time.thread_time() < deadline:
        for _ in range(100):  # ~0.1 ms between clock reads
            digest = hashlib.sha256(digest).digest()


@events.init.add_listener
def burn_cpu_per_request(environment, **_kwargs) -> None:
    def on_request(**_request) -> None:
        cpu_ms = getattr(environment.parsed_options, "request_cpu_ms", 0)
        if cpu_ms:
            burn_cpu(cpu_ms / 1000)

    environment.events.request.add_listener(on_request)
