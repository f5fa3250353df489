"""Throughput and latency of the demo API under wrk, on loopback; prints a Markdown section.

Starts PostgreSQL (durable: fsync on) and Redis from tests/support/local_services.py, runs the API
(one uvicorn process, as in its image) seeded with 10,000 items, and drives it with wrk, each run
bounded by --duration:

1. GET /healthz: the framework's floor.
2. GET /api/v1/items/1: one warmed item, answered from Redis.
3. GET /api/v1/items/{random id}: with CACHE_TTL_SECONDS=0, so every read goes to Postgres.
4. POST /api/v1/orders: one line of a random item, with a bearer token (a locked, durable write).

Everything it starts it stops. Usage: python bench/api.py [--duration 10] [--connections 32]
"""

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from tests.support.demo_api import DemoApi  # noqa: E402
from tests.support.local_services import PostgresServer, RedisServer  # noqa: E402

WRK = shutil.which("wrk") or "/usr/bin/wrk"
ITEMS = 10_000
USERS = 20
PASSWORD = "bench-password-123"

# done() prints one JSON line that run_wrk() parses; the rest of wrk's output is ignored.
REPORT_LUA = """
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK_JSON {"requests":%d,"duration_us":%d,"non_2xx":%d,"socket_errors":%d,' ..
    '"p50_us":%d,"p99_us":%d,"max_us":%d}\\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
end
"""
RANDOM_ITEM_LUA = f"""
request = function()
  return wrk.format("GET", "/api/v1/items/" .. math.random(1, {ITEMS}))
end
"""
ORDER_LUA = f"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer TOKEN"
request = function()
  local body = '{{"lines":[{{"item_id":' .. math.random(1, {ITEMS}) .. ',"quantity":1}}]}}'
  return wrk.format(nil, "/api/v1/orders", nil, body)
end
"""


def run_wrk(url: str, lua: str, args: argparse.Namespace, workdir: Path) -> dict:
    script = workdir / "script.lua"
    script.write_text(lua + REPORT_LUA)
    command = [
        WRK, f"-t{args.threads}", f"-c{args.connections}", f"-d{args.duration}s", "--timeout", "5s",
        "-s", str(script), url,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True, timeout=args.duration + 60, check=True)
    line = next(line for line in result.stdout.splitlines() if line.startswith("WRK_JSON "))
    stats = json.loads(line.removeprefix("WRK_JSON "))
    stats["rps"] = stats["requests"] / (stats["duration_us"] / 1e6)
    return stats


def http(method: str, url: str, body: dict | None = None) -> dict:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        url, data=data, method=method, headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run (1-60)")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    if not 1 <= args.duration <= 60:
        parser.error("--duration must be between 1 and 60 seconds")
    if not Path(WRK).exists():
        print("bench/api.py: wrk not found: apt-get install wrk", file=sys.stderr)
        return 2

    results: list[tuple[str, str, dict]] = []
    with (
        tempfile.TemporaryDirectory(prefix="lab-bench-api-") as tmp,
        PostgresServer(durable=True) as postgres,
        RedisServer() as redis,
    ):
        workdir = Path(tmp)
        database = postgres.create_database("lab")
        env = {
            "DATABASE_URL": database,
            "REDIS_URL": redis.url,
            "LOG_LEVEL": "WARNING",  # as in the compose stack: no log line per request
            "SEED_ON_START": "true",
            "SEED_ITEMS": str(ITEMS),
            "SEED_USERS": str(USERS),
            "SEED_USER_PASSWORD": PASSWORD,
            "CACHE_TTL_SECONDS": "300",
        }
        with DemoApi(env) as api:
            token = http(
                "POST", api.url + "/api/v1/auth/login", {"email": "user1@loadlab.test", "password": PASSWORD}
            )
            http("GET", api.url + "/api/v1/items/1")  # warm the cache
            results.append(("liveness", "GET /healthz", run_wrk(api.url + "/healthz", "", args, workdir)))
            results.append(
                (
                    "item, cached",
                    "GET /api/v1/items/1",
                    run_wrk(api.url + "/api/v1/items/1", "", args, workdir),
                )
            )
            order_lua = ORDER_LUA.replace("TOKEN", token["access_token"])
            results.append(("order", "POST /api/v1/orders", run_wrk(api.url, order_lua, args, workdir)))
        with DemoApi({**env, "CACHE_TTL_SECONDS": "0", "SEED_ON_START": "false"}) as api:
            results.append(
                (
                    "item, uncached",
                    "GET /api/v1/items/{random}",
                    run_wrk(api.url, RANDOM_ITEM_LUA, args, workdir),
                )
            )

    print("## Demo API under wrk (loopback)\n")
    print(
        f"Machine: {os.cpu_count()} cores ({cpu_model()}), Python {platform.python_version()}; "
        f"one uvicorn process, PostgreSQL 15 (fsync on), Redis, {ITEMS:,} items, LOG_LEVEL=WARNING. "
        f"wrk `-t{args.threads} -c{args.connections} -d{args.duration}s --timeout 5s` per row, "
        "sharing the cores with the API and the databases.\n"
    )
    print("| scenario | request | requests/s | p50 (ms) | p99 (ms) | max (ms) | non-2xx | socket errors |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for scenario, request, s in results:
        print(
            f"| {scenario} | `{request}` | {s['rps']:,.0f} | {s['p50_us'] / 1000:.1f} | {s['p99_us'] / 1000:.1f} "
            f"| {s['max_us'] / 1000:.1f} | {s['non_2xx']} | {s['socket_errors']} |"
        )
    print(
        "\nUncached reads run on a second API process with CACHE_TTL_SECONDS=0 (no Redis round trip at all);"
        " orders are one-line orders of a random item, each a transaction with a row lock and a durable commit."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
