"""Settings read from the environment, and only from there."""

import os
from dataclasses import dataclass

# Compose-stack defaults; the password comes from DATABASE_URL or PGPASSWORD, never from here.
DEFAULT_DATABASE_URL = "postgresql://lab@postgres:5432/lab"
DEFAULT_REDIS_URL = "redis://redis:6379/0"
# HS256 wants a key of at least 256 bits (RFC 7518, 3.2).
MIN_SECRET_LENGTH = 32
# The bottleneck knobs' ceiling: a second of CPU or of query time per request is already far past any
# demo, and a query delay must stay well inside the readiness probe's and the queries' timeouts.
MAX_KNOB_MS = 1000


class ConfigError(Exception):
    """A setting is missing or malformed; the message names it and the fix."""


@dataclass(frozen=True)
class Settings:
    database_url: str
    redis_url: str
    secret_key: str
    db_pool_min_size: int
    db_pool_max_size: int
    cache_ttl_seconds: int
    log_level: str
    extra_latency_ms: int
    cpu_work_ms: int
    db_query_delay_ms: int
    seed_on_start: bool
    seed_items: int
    seed_users: int
    seed_user_password: str | None


def env_int(
    env: dict[str, str], name: str, default: int, minimum: int = 0, maximum: int | None = None
) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    bounds = f">= {minimum}" if maximum is None else f"from {minimum} to {maximum}"
    fix = f"set it to a whole number {bounds}"
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer: {fix}") from None
    if value < minimum:
        raise ConfigError(f"{name}={value} is below {minimum}: {fix}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name}={value} is above {maximum}: {fix}")
    return value


def _bool(env: dict[str, str], name: str) -> bool:
    raw = env.get(name, "").strip().lower()
    if raw in ("", "0", "false", "no", "off"):
        return False
    if raw in ("1", "true", "yes", "on"):
        return True
    raise ConfigError(f"{name}={raw!r} is not a boolean: set it to true or false")


def load_settings(env: dict[str, str] | None = None) -> Settings:
    """Read and check every setting; raise ConfigError on the first bad one."""
    env = dict(os.environ if env is None else env)
    secret = env.get("API_SECRET_KEY", "")
    if not secret:
        raise ConfigError("API_SECRET_KEY is not set: set it to a long random string (it signs the JWTs)")
    if len(secret) < MIN_SECRET_LENGTH:
        raise ConfigError(
            f"API_SECRET_KEY has {len(secret)} characters: use at least {MIN_SECRET_LENGTH} random ones"
            " (e.g. python -c 'import secrets; print(secrets.token_hex(32))')"
        )
    log_level = env.get("LOG_LEVEL", "INFO").strip().upper() or "INFO"
    if log_level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ConfigError(f"LOG_LEVEL={log_level!r} is unknown: use DEBUG, INFO, WARNING, ERROR or CRITICAL")
    pool_max = env_int(env, "DB_POOL_MAX_SIZE", 10, minimum=1)
    # The default minimum follows a smaller maximum, so that DB_POOL_MAX_SIZE=1 alone is valid.
    pool_min = env_int(env, "DB_POOL_MIN_SIZE", min(2, pool_max))
    if pool_min > pool_max:
        raise ConfigError(
            f"DB_POOL_MIN_SIZE={pool_min} exceeds DB_POOL_MAX_SIZE={pool_max}: make the minimum <= the maximum"
        )
    seed_on_start = _bool(env, "SEED_ON_START")
    seed_users = env_int(env, "SEED_USERS", 1_000)
    seed_user_password = env.get("SEED_USER_PASSWORD") or None
    if seed_on_start and seed_users and not seed_user_password:
        raise ConfigError(
            "SEED_ON_START=true seeds users but SEED_USER_PASSWORD is not set: set it, or set SEED_USERS=0"
        )
    return Settings(
        database_url=env.get("DATABASE_URL") or DEFAULT_DATABASE_URL,
        redis_url=env.get("REDIS_URL") or DEFAULT_REDIS_URL,
        secret_key=secret,
        db_pool_min_size=pool_min,
        db_pool_max_size=pool_max,
        cache_ttl_seconds=env_int(env, "CACHE_TTL_SECONDS", 30),
        log_level=log_level,
        extra_latency_ms=env_int(env, "API_EXTRA_LATENCY_MS", 0),
        cpu_work_ms=env_int(env, "API_CPU_WORK_MS", 0, maximum=MAX_KNOB_MS),
        db_query_delay_ms=env_int(env, "API_DB_QUERY_DELAY_MS", 0, maximum=MAX_KNOB_MS),
        seed_on_start=seed_on_start,
        seed_items=env_int(env, "SEED_ITEMS", 10_000),
        seed_users=seed_users,
        seed_user_password=seed_user_password,
    )
